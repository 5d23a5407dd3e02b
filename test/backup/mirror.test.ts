import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { integrity, query, writeMarker } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

const stack = useStack('mirror', {
  env: (dir) => ({ MAX_BACKUPS: '2', BACKUP_COMPRESSION: 'zstd', BACKUP_MIRROR_DIR: path.join(dir, 'mirror') }),
});
const mirrorDir = () => stack.box.env.BACKUP_MIRROR_DIR!;

const sha = (file: string) => execFileSync('sha256sum', [file]).toString().split(' ')[0];
const backupFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('workstation-backup-'))
    .sort();

const setMarker = (value: string) => writeMarker(stack.box.config.databasePath, value);

async function backupNow() {
  const res = await request(stack.producer.server).post('/api/backups').set(auth);
  expect(res.status).toBe(201);
  return res.body.backup as { id: number; filePath: string; fileName: string; checksum: string };
}

describe('the mirror', () => {
  it('receives a checked copy of every backup, with its manifest; retention applies to both', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await backupNow());
    const primary = backupFiles(stack.box.config.backupDir);
    expect(primary).toHaveLength(2);
    expect(backupFiles(mirrorDir())).toEqual(primary);
    for (const name of primary) {
      expect(sha(path.join(mirrorDir(), name))).toBe(sha(path.join(stack.box.config.backupDir, name)));
      expect(fs.existsSync(path.join(mirrorDir(), `.${name}.manifest.json`))).toBe(true);
    }
    expect(primary).not.toContain(made[0]!.fileName);
    expect(fs.existsSync(path.join(mirrorDir(), `.${made[0]!.fileName}.manifest.json`))).toBe(false);

    // The storage details need the token.
    const health = await request(stack.producer.server).get('/health').set(auth);
    expect(health.body.storage.mirror).toMatchObject({ configured: true, writable: true, copies: 2, missing: 0, failed: [] });
  });

  it('verify and restore use the mirror when the primary file is deleted', async () => {
    setMarker('kept');
    const backup = await backupNow();
    setMarker('changed');
    fs.rmSync(backup.filePath);

    // Through the CLI with Redis down...
    const offline = { ...stack.box.env, REDIS_URL: REDIS_DOWN };
    const v = await runCli(offline, 'verify', String(backup.id), '--json');
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.json).toMatchObject({ valid: true, source: 'mirror', copies: { primary: { valid: false, message: 'file missing' } } });

    // ...and through the service.
    const api = await request(stack.producer.server).post(`/api/backups/${backup.id}/verify`).set(auth);
    expect(api.body.valid).toBe(true);

    const r = await runCli(offline, 'restore', String(backup.id), '--yes', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(query<{ v: string }>(stack.box.config.databasePath, 'SELECT v FROM marker').v).toBe('kept');
    expect(integrity(stack.box.config.databasePath)).toBe('ok');
  });

  it('a damaged primary copy falls back to the mirror too', async () => {
    const backup = await backupNow();
    fs.writeFileSync(backup.filePath, 'not the backup');
    const v = await runCli({ ...stack.box.env, REDIS_URL: REDIS_DOWN }, 'verify', String(backup.id), '--json');
    expect(v.code).toBe(0);
    expect(v.json.copies.primary.message).toBe('checksum mismatch');
  });

  it('a mirror that cannot be written does not fail the backup; /health shows it, and the next backup catches up', async () => {
    execFileSync('chattr', ['+i', mirrorDir()]);
    let missed: { id: number; fileName: string };
    try {
      missed = await backupNow();
      // /health reuses a probe for a few seconds: wait for one made after the mirror broke.
      const health = await waitUntil('/health to probe the mirror again', async () => {
        const r = await request(stack.producer.server).get('/health').set(auth);
        return r.body.storage.mirror.writable === false ? r : null;
      });
      expect(health.body.storage.mirror.writable).toBe(false);
      expect(health.body.storage.mirror.missing).toBeGreaterThanOrEqual(1);
      expect(health.body.storage.mirror.failed.map((f: { backupId: number }) => f.backupId)).toContain(missed.id);
    } finally {
      execFileSync('chattr', ['-i', mirrorDir()]);
    }
    await backupNow();
    const health = await waitUntil('/health to probe the mirror again', async () => {
      const r = await request(stack.producer.server).get('/health').set(auth);
      return r.body.storage.mirror.writable === true ? r : null;
    });
    expect(health.body.storage.mirror).toMatchObject({ writable: true, missing: 0, failed: [] });
    expect(backupFiles(mirrorDir())).toEqual(backupFiles(stack.box.config.backupDir));
  });
});
