/**
 * Where there is no live database (it was lost), a restore's copy begins as soon as its source's
 * bytes are final, beside their checks, in one transaction nobody sees, and commits only once they
 * have passed; when they fail, what it wrote is rolled back. Where there is a live database, the
 * copy waits for the checks: the application's writes never wait on them.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { startApp } from '../helpers/fake-app.js';
import { auth } from '../helpers/producer.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, integrity, query } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

// Info logs: the worker says where each restore's time went, and whether its copy began early.
// Larger than one step of the copy (16 MiB), so that it writes several before it may commit.
const stack = useStack('early-copy', { env: { JOB_ATTEMPTS: '1', RESTORE_BUSY_TIMEOUT: '30000', LOG_LEVEL: 'info' }, sizeMb: 40 });

const live = () => stack.box.config.databasePath;
const workflows = (file: string) => query<{ n: number }>(file, 'SELECT count(*) AS n FROM workflows').n;
/** Commits a row through a connection of its own, waiting at most 2 s for the write lock. */
function addWorkflow(name: string): void {
  const db = new Database(live());
  try {
    db.pragma('busy_timeout = 2000');
    db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, ?, ?)').run(name, '{}', new Date().toISOString());
  } finally {
    db.close();
  }
}

/** The live database lost, with its -wal and -shm. */
function removeLive(): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(live() + suffix, { force: true });
}

const restore = (id: number) => request(stack.producer.server).post(`/api/backups/${id}/restore`).set(auth);

/** A backup never verified: its restore runs integrity_check. */
async function newBackup(): Promise<{ id: number; filePath: string }> {
  const res = await request(stack.producer.server).post('/api/backups').set(auth);
  expect(res.status).toBe(201);
  return res.body.backup;
}

/** A backup whose bytes passed a full verification: its restore checks only their checksum. */
async function verifiedBackup(): Promise<{ id: number; filePath: string }> {
  const backup = await newBackup();
  const verified = await request(stack.producer.server).post(`/api/backups/${backup.id}/verify`).set(auth).send({ mode: 'full' });
  expect(verified.body).toMatchObject({ valid: true });
  return backup;
}

/** The worker's log lines with `msg` since `from`. */
function logged(msg: string, from: number): Record<string, unknown>[] {
  return stack.worker
    .output()
    .slice(from)
    .split('\n')
    .filter((line) => line.includes(msg))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
const BEGUN = 'copy into the database begun beside the checks';
const SPLIT = 'backup copied in and checked';

describe('a copy begun before the checks end', () => {
  it('never where there is a live database: an application writing all along waits on no check, and sees the backup', async () => {
    const backup = await verifiedBackup();
    const atBackup = workflows(backup.filePath);
    const app = await startApp(live(), { busyTimeoutMs: 60_000, run: { work: 'transfers', everyMs: 3 } });
    addWorkflow('after-the-backup');
    const logFrom = stack.worker.output().length;

    const res = await restore(backup.id);
    expect(res.status).toBe(200);
    expect(res.body.restore).toMatchObject({ backupId: backup.id, status: 'completed', errorMessage: null });
    expect(logged(BEGUN, logFrom)).toEqual([]);
    expect(logged(SPLIT, logFrom)).toEqual([expect.objectContaining({ early: false })]);
    const seen = (await app.send({ op: 'count', table: 'workflows' })).n;
    const counts = await app.stop();
    expect(counts.errors).toBe(0);
    expect(seen).toBe(atBackup);
    expect(integrity(live())).toBe('ok');
    expect(balanceSum(live())).toBe(ACCOUNTS * INITIAL_BALANCE);
    // The safety backup holds the row written after the backup.
    const safety = stack.catalog.getBackup(res.body.restore.safetyBackupId)!;
    expect(safety).toMatchObject({ backup_type: 'pre-migration', status: 'completed' });
    expect(query<{ n: number }>(safety.file_path, "SELECT count(*) AS n FROM workflows WHERE name = 'after-the-backup'").n).toBe(1);
  });

  it('waits for integrity_check of bytes never verified when there is a live database', async () => {
    const backup = await newBackup();
    const logFrom = stack.worker.output().length;
    const res = await restore(backup.id);
    expect(res.status).toBe(200);
    expect(logged(BEGUN, logFrom)).toEqual([]);
    expect(logged(SPLIT, logFrom)).toEqual([expect.objectContaining({ early: false })]);
    expect(integrity(live())).toBe('ok');
  });

  it.each([
    ['the checksum of bytes that passed before', verifiedBackup],
    ['integrity_check of bytes never verified', newBackup],
  ])('with no live database, begins beside %s and commits once it passes', async (_what, make) => {
    const backup = await make();
    const atBackup = workflows(backup.filePath);
    removeLive();
    const logFrom = stack.worker.output().length;

    const res = await restore(backup.id);
    expect(res.status).toBe(200);
    expect(res.body.restore).toMatchObject({ status: 'completed', safetyBackupId: null });
    expect(logged(BEGUN, logFrom)).toHaveLength(1);
    expect(logged(SPLIT, logFrom)).toEqual([expect.objectContaining({ early: true })]);
    expect(workflows(live())).toBe(atBackup);
    expect(integrity(live())).toBe('ok');
    expect(balanceSum(live())).toBe(ACCOUNTS * INITIAL_BALANCE);
  });

  it('rolls back what it wrote when the bytes fail their checksum: no database appears, nothing is recorded as restored', async () => {
    const backup = await verifiedBackup();
    // Changed after they passed, the catalog's checksum left as it was: the restore still takes
    // them for the verified bytes (checksum only) and begins the copy, which the checksum then stops.
    const fd = fs.openSync(backup.filePath, 'r+');
    fs.writeSync(fd, Buffer.alloc(64, 0xee), 0, 64, 4096 * 3);
    fs.closeSync(fd);
    removeLive();
    const logFrom = stack.worker.output().length;

    const res = await restore(backup.id);
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/failed verification: checksum mismatch/);
    expect(res.body.restore).toMatchObject({ status: 'failed', restoredAt: null });
    // The copy had begun, and never committed: the file it was writing is gone with it.
    expect(logged(BEGUN, logFrom)).toHaveLength(1);
    expect(logged(SPLIT, logFrom)).toEqual([]);
    for (const suffix of ['', '-journal', '-wal']) expect(fs.existsSync(live() + suffix)).toBe(false);
  });
});
