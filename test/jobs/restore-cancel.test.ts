/**
 * Cancel never lies (issue 21, reproduction 7): `POST /api/jobs/:id/cancel` while a restore copies
 * into the live database. A real worker process, the real Redis, a 200 MB live database in WAL mode.
 * The copy is one step of SQLite's backup API in a thread: while it writes, the live database's
 * `-wal` fills with the backup's pages, which is how the test knows the copy is under way. Before
 * the copy writes, the application's write transaction holds it back, which is how the test cancels
 * a restore that has taken its safety backup but not copied yet.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { contentOf, createBulkyDb, inspectQueues, setMarker } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';

const stack = useStack('restore-cancel', { database: (file) => createBulkyDb(file, 200), timeoutMs: 180_000 });
let q: ReturnType<typeof inspectQueues>;
let backupId: number;
let backedUp: ReturnType<typeof contentOf>;

const live = () => stack.box.config.databasePath;
const api = () => request(stack.producer.server);
const walBytes = () => fs.statSync(`${live()}-wal`, { throwIfNoEntry: false })?.size ?? 0;

beforeAll(async () => {
  q = inspectQueues(stack.box.config);
  const backup = await api().post('/api/backups').set(auth);
  expect(backup.status).toBe(201);
  backupId = backup.body.backup.id as number;
  backedUp = contentOf(live());
  setMarker(live(), 'written after the backup');
}, 180_000);

afterAll(() => q?.close());

async function startRestore(): Promise<string> {
  const started = await api().post(`/api/backups/${backupId}/restore`).set(auth).set('Prefer', 'respond-async');
  expect(started.status).toBe(202);
  return started.body.jobId as string;
}

async function settled(queue: Queue, id: string): Promise<Job> {
  await waitUntil(`job ${id} to settle`, async () => ['completed', 'failed'].includes(await queue.getJobState(id)), 120_000, 20);
  return (await queue.getJob(id))!;
}

/**
 * Waits for whatever still writes the live database to end: a copy's thread that was left running
 * holds the write lock until its step commits or is undone.
 */
function quiet(): void {
  const db = new Database(live());
  try {
    db.pragma('busy_timeout = 60000');
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
  } finally {
    db.close();
  }
}

/** What every restore row must never do: call a database unchanged that holds the backup. */
function expectNoLie(jobId: string, before: ReturnType<typeof contentOf>): void {
  quiet();
  const row = stack.catalog.getRestoreByJob(jobId)!;
  const now = contentOf(live());
  expect(now.integrity).toBe('ok');
  if (now.digest !== before.digest) expect(row.error_message ?? '').not.toMatch(/not changed|unchanged/);
  if (row.status === 'failed' || row.status === 'rolled_back') {
    const safety = row.safety_backup_id ? stack.catalog.getBackup(row.safety_backup_id) : undefined;
    expect(safety, 'a failed restore after its safety backup points to it').toBeDefined();
    expect(row.error_message).toContain(`safety backup ${safety!.id}`);
  }
}

describe('cancelling a restore', () => {
  it('while the copy writes is refused with 409 restore_copying; the restore completes and says so', async () => {
    const before = contentOf(live());
    expect(before.marker).toBe('written after the backup');
    expect(walBytes()).toBeLessThan(8 << 20);

    const id = await startRestore();
    await waitUntil('the copy into the live database to be writing', () => walBytes() > 16 << 20, 120_000, 2);
    const cancel = await api().post(`/api/jobs/${id}/cancel`).set(auth).send({ reason: 'changed my mind' });
    const done = await settled(q.restore, id);

    expectNoLie(id, before);
    expect(cancel.status).toBe(409);
    expect(cancel.body).toEqual({ success: false, error: { code: 'restore_copying', message: expect.stringContaining(id) } });
    expect(await q.restore.getJobState(id)).toBe('completed');
    expect(done.returnvalue).toMatchObject({ status: 'completed', safetyBackupId: expect.any(Number), errorMessage: null });
    const row = stack.catalog.getRestoreByJob(id)!;
    expect(row.status).toBe('completed');
    expect(row.restored_at).not.toBeNull();
    expect(contentOf(live())).toEqual(backedUp);
  }, 120_000);

  it('before the copy writes stops it: the live database is unchanged and the row names the safety backup', async () => {
    setMarker(live(), 'before the second restore');
    const before = contentOf(live());
    // The application in the middle of a write transaction: the copy waits for it, unwritten.
    const app = new Database(live());
    app.exec('BEGIN IMMEDIATE');
    app.prepare('UPDATE marker SET value = ? WHERE id = 1').run('not committed');
    let done: Job;
    let id: string;
    try {
      id = await startRestore();
      await waitUntil('the restore to reach its copy', async () => Number((await q.restore.getJob(id))?.progress ?? 0) >= 60, 120_000, 20);
      const cancel = await api().post(`/api/jobs/${id}/cancel`).set(auth).send({ reason: 'wrong backup chosen' });
      expect(cancel.status).toBe(202);
      expect(cancel.body).toMatchObject({ success: true, job: { id, queue: 'restore' } });
      done = await settled(q.restore, id);
    } finally {
      app.exec('ROLLBACK');
      app.close();
    }

    expectNoLie(id, before);
    expect(await q.restore.getJobState(id)).toBe('failed');
    expect(done.attemptsMade).toBe(1);
    const row = stack.catalog.getRestoreByJob(id)!;
    expect(row.status).toBe('failed');
    expect(row.restored_at).toBeNull();
    expect(row.error_message).toMatch(/^cancelled: wrong backup chosen; the live database was not changed by this restore/);
    const safety = stack.catalog.getBackup(row.safety_backup_id!)!;
    expect(safety).toMatchObject({ status: 'completed', backup_type: 'pre-migration' });
    expect(row.error_message).toContain(`safety backup ${safety.id} (${path.basename(safety.file_path)})`);
    expect(done.failedReason).toBe(row.error_message);
    expect(contentOf(live())).toEqual(before);
  }, 120_000);
});
