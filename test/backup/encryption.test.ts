import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createWorkstationDb, integrity, query } from '../helpers/workstation-db.js';
import { withCatalogDb } from '../helpers/catalog-db.js';

const NEEDLE = 'needle-workflow-7f3a9c1e';
const KEY = randomBytes(32).toString('base64');

let box: Sandbox;
let env: Record<string, string>;

beforeAll(() => {
  box = sandbox('crypt', { REDIS_URL: REDIS_DOWN, BACKUP_ENCRYPTION_KEY: KEY });
  env = box.env;
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  const db = new Database(box.config.databasePath);
  db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, ?, ?)').run(NEEDLE, 'secret definition', 'now');
  db.close();
});

afterAll(async () => {
  await box?.cleanup();
});

const hasNeedle = () => query<{ n: number }>(box.config.databasePath, 'SELECT count(*) AS n FROM workflows WHERE name = ?', NEEDLE).n === 1;

describe('encrypted backups', () => {
  let backup: { id: number; filePath: string; checksum: string };

  it('hold no plaintext page, and their manifest no database details', async () => {
    const r = await runCli(env, 'backup', '--json');
    expect(r.code, r.stderr).toBe(0);
    backup = r.json.backup;
    expect(backup.filePath).toMatch(/\.db\.enc$/);
    const bytes = fs.readFileSync(backup.filePath);
    expect(bytes.includes(Buffer.from(NEEDLE))).toBe(false);
    expect(bytes.includes(Buffer.from('SQLite format 3'))).toBe(false);
    expect(bytes.includes(Buffer.from('CREATE TABLE'))).toBe(false);
    // The same database unencrypted does contain the row: the search above can find it.
    expect(fs.readFileSync(box.config.databasePath).includes(Buffer.from(NEEDLE))).toBe(true);

    const manifest = fs.readFileSync(path.join(box.config.backupDir, `.${path.basename(backup.filePath)}.manifest.json`), 'utf8');
    expect(JSON.parse(manifest)).toMatchObject({ id: backup.id, encryption: { algorithm: 'aes-256-gcm-chunked' }, database: null });
    expect(manifest).not.toContain(box.config.databasePath);
  });

  it('round-trips through a restore', async () => {
    const db = new Database(box.config.databasePath);
    db.prepare('DELETE FROM workflows WHERE name = ?').run(NEEDLE);
    db.close();
    expect(hasNeedle()).toBe(false);

    const r = await runCli(env, 'restore', String(backup.id), '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(hasNeedle()).toBe(true);
    expect(integrity(box.config.databasePath)).toBe('ok');
  });

  it('refuses a wrong key and a missing key with a clear error, and restores nothing', async () => {
    const before = fs.readFileSync(box.config.databasePath);
    const wrong = { ...env, BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
    const v = await runCli(wrong, 'verify', String(backup.id), '--json');
    expect(v.code).toBe(5);
    expect(v.json.message).toMatch(/cannot decrypt: the backup was encrypted with key [0-9a-f]{16}, which is not configured/);

    const r = await runCli(wrong, 'restore', String(backup.id), '--yes', '--json');
    expect(r.code).toBe(5);
    expect(r.json.error.message).toMatch(/failed verification: .*not configured/);

    const none = { ...env, BACKUP_ENCRYPTION_KEY: '' };
    const n = await runCli(none, 'verify', String(backup.id), '--json');
    expect(n.code).toBe(5);
    expect(n.json.message).toMatch(/no key is configured/);

    expect(fs.readFileSync(box.config.databasePath).equals(before)).toBe(true);
  });

  it('reads backups written with a rotated-out key kept in BACKUP_DECRYPTION_KEYS', async () => {
    const rotated = { ...env, BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'), BACKUP_DECRYPTION_KEYS: KEY };
    const v = await runCli(rotated, 'verify', String(backup.id), '--json');
    expect(v.code, v.stdout).toBe(0);
    expect(v.json.valid).toBe(true);
    // New backups use the new key.
    const b = await runCli(rotated, 'backup', '--json');
    expect(b.code, b.stderr).toBe(0);
    const catalog = new Catalog(box.config.catalogPath);
    try {
      expect(catalog.getBackup(b.json.backup.id)!.encryption).not.toBe(catalog.getBackup(backup.id)!.encryption);
    } finally {
      catalog.close();
    }
  });

  it('refuses a flipped byte, even when the catalog checksum was changed to match it', async () => {
    const fd = fs.openSync(backup.filePath, 'r+');
    const at = Math.floor(fs.statSync(backup.filePath).size / 2);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x01;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);

    const v = await runCli(env, 'verify', String(backup.id), '--json');
    expect(v.code).toBe(5);
    expect(v.json.message).toBe('checksum mismatch');

    // Someone able to edit the catalog as well: the chunk's tag still catches it.
    const sha = execFileSync('sha256sum', [backup.filePath]).toString().split(' ')[0]!;
    withCatalogDb(box.config.catalogPath, (db) => db.prepare('UPDATE backup_log SET checksum = ? WHERE id = ?').run(sha, backup.id));
    const again = await runCli(env, 'verify', String(backup.id), '--json');
    expect(again.code).toBe(5);
    expect(again.json.message).toMatch(/cannot decrypt: chunk \d+ failed authentication/);

    const before = fs.readFileSync(box.config.databasePath);
    const r = await runCli(env, 'restore', String(backup.id), '--yes', '--json');
    expect(r.code).toBe(5);
    expect(fs.readFileSync(box.config.databasePath).equals(before)).toBe(true);
  });
});
