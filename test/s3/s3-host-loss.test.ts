/**
 * The whole host is lost: BACKUP_DIR (with the catalog in it) and the live database are gone, Redis
 * is unreachable, and only the bucket remains. `reindex` rebuilds the catalog from the bucket's
 * manifests alone and `restore --latest-valid --yes` brings back the newest backup: plain, and
 * compressed and encrypted. Every step is a real CLI process against a real s3rver.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { S3Server } from '../helpers/s3.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, createWorkstationDb, integrity, query, writeMarker } from '../helpers/workstation-db.js';

let s3: S3Server;
const boxes: Sandbox[] = [];

beforeAll(async () => {
  s3 = await S3Server.start();
});

afterAll(async () => {
  await s3?.cleanup();
  for (const b of boxes) await b.cleanup();
});

interface Made {
  id: number;
  fileName: string;
  checksum: string;
}

async function hostLoss(name: string, extra: Record<string, string>): Promise<void> {
  const box = sandbox(name, extra);
  boxes.push(box);
  const prefix = `hosts/${name}`;
  const env = { ...box.env, ...s3.env(prefix), REDIS_URL: REDIS_DOWN };
  const db = box.config.databasePath;
  createWorkstationDb(db, { sizeMb: 1 });

  const made: Made[] = [];
  for (const marker of ['first', 'second', 'newest']) {
    writeMarker(db, marker);
    const r = await runCli(env, 'backup', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    made.push(r.json.backup as Made);
  }
  writeMarker(db, 'after the last backup');
  const keys = await s3.keys(`${prefix}/`);
  for (const b of made) {
    expect(keys).toContain(`${prefix}/${b.fileName}`);
    expect(keys).toContain(`${prefix}/.${b.fileName}.manifest.json`);
    expect(await s3.sha256(`${prefix}/${b.fileName}`)).toBe(b.checksum);
  }

  // The host is gone: backups, catalog and the live database with its WAL.
  fs.rmSync(box.config.backupDir, { recursive: true, force: true });
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(db + suffix, { force: true });
  expect(fs.existsSync(box.config.catalogPath)).toBe(false);

  const reindex = await runCli(env, 'reindex', '--json');
  expect(reindex.code, reindex.stdout + reindex.stderr).toBe(0);
  expect(reindex.json.mirrorError).toBeNull();
  expect([...(reindex.json.imported as number[])].sort((a, b) => a - b)).toEqual(made.map((b) => b.id));

  const list = await runCli(env, 'list', '--json');
  expect(list.code, list.stderr).toBe(0);
  const rows = list.json.backups as { id: number; checksum: string; status: string; mirror: string }[];
  for (const b of made) {
    expect(rows.find((r) => r.id === b.id)).toMatchObject({ status: 'completed', checksum: b.checksum, mirror: 'ok' });
  }

  const restore = await runCli(env, 'restore', '--latest-valid', '--yes', '--json');
  expect(restore.code, restore.stdout + restore.stderr).toBe(0);
  expect(restore.json.backupId).toBe(made.at(-1)!.id);
  expect(restore.json.skipped).toEqual([]);
  expect(restore.json.restore.status).toBe('completed');

  expect(integrity(db)).toBe('ok');
  expect(query<{ v: string }>(db, 'SELECT v FROM marker').v).toBe('newest');
  expect(balanceSum(db)).toBe(ACCOUNTS * INITIAL_BALANCE);
}

describe('a new host with an empty BACKUP_DIR and Redis unreachable', () => {
  it('recovers from the bucket alone: reindex, then restore --latest-valid', async () => {
    await hostLoss('s3-hostloss', {});
  });

  it('recovers compressed, encrypted backups with the same key', async () => {
    await hostLoss('s3-hostloss-crypt', { BACKUP_COMPRESSION: 'zstd', BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  });
});
