/**
 * Worker processes killed with SIGKILL in the middle of a backup or a restore, and stopped with
 * SIGTERM: real processes, the real Redis, real files.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { waitUntil, type Sandbox } from '../helpers/env.js';
import {
  backupFiles,
  catalogMatchesFiles,
  contentOf,
  createBulkyDb,
  inspectQueues,
  setMarker,
  sha256,
  startProducerProcess,
  tempFiles,
  startWorker,
} from '../helpers/faults.js';
import { killAll, type Proc } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum } from '../helpers/workstation-db.js';
import type { RunningProducer } from '../../src/producer/server.js';

// No worker of the stack's: each test starts, kills and stops its own.
const stack = useStack('kill', {
  env: {
    // Short enough for a test, long enough that a loaded machine does not mistake a live worker for a dead one.
    LOCK_TTL: '3000',
    JOB_LOCK_DURATION: '4000',
    STALLED_INTERVAL: '1000',
    REAPER_INTERVAL: '1000',
    BACKUP_COMPRESSION: 'gzip',
    MAX_BACKUPS: '50',
    SHUTDOWN_TIMEOUT: '60000',
  },
  database: (file) => createBulkyDb(file, 16),
  workers: 0,
});
let box: Sandbox;
let producer: RunningProducer;
let catalog: Catalog;
let q: ReturnType<typeof inspectQueues>;

beforeAll(() => {
  ({ box, producer, catalog } = stack);
  q = inspectQueues(box.config);
});

// A failed test must not leave a worker behind to take the next test's jobs.
afterEach(async () => {
  await killAll();
});

afterAll(() => q?.close());

const dir = () => box.config.backupDir;
const tempOf = (proc: Proc) => tempFiles(dir()).filter((n) => n.includes(`-${proc.child.pid}-`));

/** Queues a backup without waiting for it. */
async function queueBackup(type: 'manual' | 'pre-migration' = 'manual'): Promise<string> {
  const res = await request(producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async').send({ type });
  expect(res.status).toBe(202);
  return res.body.jobId as string;
}

async function sigkillWhenWriting(worker: Proc): Promise<string[]> {
  const temps = await waitUntil(
    `worker ${worker.child.pid} to write a temp file`,
    () => (tempOf(worker).length ? tempOf(worker) : null),
    30_000,
    10,
  );
  await worker.kill();
  return temps;
}

async function jobState(id: string) {
  return (await q.backup.getJobState(id)) as string;
}

describe('a worker killed with SIGKILL in the middle of a backup', () => {
  it('leaves the job to another worker after stall detection; its temp file goes and its lock expires', async () => {
    const fenceBefore = catalog.currentFence();
    const a = await startWorker(box.env);
    const jobId = await queueBackup();
    const deadTemps = await sigkillWhenWriting(a);
    expect(deadTemps.length).toBeGreaterThan(0);
    // The dead worker still "holds" the database lock until its TTL runs out.
    expect(await q.lockHolder()).toContain(`:${a.child.pid}:`);

    const b = await startWorker(box.env);
    await waitUntil('the job to complete on the second worker', async () => (await jobState(jobId)) === 'completed', 60_000);

    const job = (await q.backup.getJob(jobId))!;
    expect(job.stalledCounter).toBe(1);
    const row = catalog.getBackupByJob(jobId)!;
    expect(row.status).toBe('completed');
    expect(sha256(row.file_path)).toBe(row.checksum);
    for (const t of deadTemps) expect(fs.existsSync(path.join(dir(), t))).toBe(false);
    expect(tempFiles(dir())).toEqual([]);
    // The dead worker's grant and the second worker's: the lock was taken again, so it expired.
    expect(catalog.currentFence()).toBeGreaterThanOrEqual(fenceBefore + 2);
    expect(await q.lockHolder()).toBeNull();
    expect(catalog.inProgressBackups()).toEqual([]);
    catalogMatchesFiles(dir(), catalog.completedBackups());
    await b.stop();
  }, 120_000);

  it('has its abandoned row marked failed by the reaper when the job is gone for good', async () => {
    const a = await startWorker(box.env);
    const jobId = await queueBackup();
    await sigkillWhenWriting(a);
    // The rerun is killed too: a second stall fails the job, and nobody will take its row over.
    const b = await startWorker(box.env);
    await sigkillWhenWriting(b);
    const row = catalog.getBackupByJob(jobId)!;
    expect(row.status).toBe('in_progress');

    const c = await startWorker(box.env);
    await waitUntil('the job to fail as stalled', async () => (await jobState(jobId)) === 'failed', 60_000);
    expect((await q.backup.getJob(jobId))!.failedReason).toMatch(/stalled/i);
    const reaped = await waitUntil('the reaper to settle the row', () => {
      const r = catalog.getBackup(row.id)!;
      return r.status === 'failed' ? r : null;
    });
    expect(reaped.error_message).toMatch(/abandoned: its job .* is gone/);
    expect(reaped.file_size_bytes).toBeNull();
    await waitUntil('the temp files of both dead workers to be removed', () => tempFiles(dir()).length === 0);
    expect(fs.existsSync(row.file_path) && !catalog.completedBackups().some((b) => b.file_path === row.file_path)).toBe(false);
    await waitUntil('the lock to be free', async () => (await q.lockHolder()) === null);

    // The system carries on: the next backup completes on the surviving worker.
    const res = await request(producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    expect(res.body.backup.status).toBe('completed');
    catalogMatchesFiles(dir(), catalog.completedBackups());
    await c.stop();
  }, 120_000);
});

describe('a worker killed with SIGKILL in the middle of a restore', () => {
  // Where the kill lands: during the safety backup, as the copy starts, later in the copy or its
  // integrity check, and after the copy was recorded (the rerun must then only check, not copy again).
  const killPoints = [
    { progress: 25, delayMs: 0 },
    { progress: 60, delayMs: 0 },
    { progress: 60, delayMs: 300 },
    { progress: 60, delayMs: 700 },
    { progress: 90, delayMs: 0 },
  ];

  it('leaves the live database fully restored or untouched, and the rerun finishes the restore', async () => {
    setMarker(box.config.databasePath, 'from-backup');
    const worker = await startWorker(box.env);
    const backup = (await request(producer.server).post('/api/backups').set(auth)).body.backup;
    expect(backup.status).toBe('completed');
    await worker.stop();
    const wanted = contentOf(box.config.databasePath);

    const outcomes: string[] = [];
    for (const point of killPoints) {
      setMarker(box.config.databasePath, 'live');
      const before = contentOf(box.config.databasePath);
      const a = await startWorker(box.env);
      const res = await request(producer.server).post(`/api/backups/${backup.id}/restore`).set(auth).set('Prefer', 'respond-async');
      expect(res.status).toBe(202);
      const jobId = res.body.jobId as string;
      await waitUntil(
        `restore progress ${point.progress}`,
        async () => Number((await q.restore.getJob(jobId))?.progress ?? 0) >= point.progress,
        60_000,
        5,
      );
      if (point.delayMs) await new Promise((r) => setTimeout(r, point.delayMs));
      await a.kill();
      const finishedFirst = (await q.restore.getJobState(jobId)) === 'completed';

      // Right after the kill: one or the other, never a mixture, and sound.
      const after = contentOf(box.config.databasePath);
      expect(after.integrity).toBe('ok');
      expect([before.digest, wanted.digest]).toContain(after.digest);
      expect(balanceSum(box.config.databasePath)).toBe(ACCOUNTS * INITIAL_BALANCE);
      outcomes.push(finishedFirst ? 'finished before the kill' : after.digest === wanted.digest ? 'restored' : 'untouched');

      const b = await startWorker(box.env);
      await waitUntil('the rerun of the restore to complete', async () => (await q.restore.getJobState(jobId)) === 'completed', 60_000);
      const final = contentOf(box.config.databasePath);
      expect(final.integrity).toBe('ok');
      expect(final.digest).toBe(wanted.digest);
      const restore = catalog.getRestoreByJob(jobId)!;
      expect(restore.status).toBe('completed');
      expect(restore.restored_at).not.toBeNull();
      // The safety backup exists, is complete and holds the database as it was before the restore.
      const safety = catalog.getBackup(restore.safety_backup_id!)!;
      expect(safety.status).toBe('completed');
      expect(catalog.getBackupByJob(`${jobId}:safety`)!.id).toBe(safety.id);
      expect(tempFiles(dir())).toEqual([]);
      expect(catalog.inProgressBackups()).toEqual([]);
      await b.stop();
    }
    // Recorded for docs/reliability.md: where the kills landed.
    console.info(`restore kills: ${outcomes.join(', ')}`);
    catalogMatchesFiles(dir(), catalog.completedBackups());
  }, 240_000);
});

describe('a restore whose job is gone for good', () => {
  it('has its abandoned restore row marked failed by the reaper, the live database sound', async () => {
    setMarker(box.config.databasePath, 'from-backup');
    const first = await startWorker(box.env);
    const backup = (await request(producer.server).post('/api/backups').set(auth)).body.backup as { id: number };
    await first.stop();
    setMarker(box.config.databasePath, 'live');
    const res = await request(producer.server).post(`/api/backups/${backup.id}/restore`).set(auth).set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    const jobId = res.body.jobId as string;
    const progressAtLeast = (p: number) => async () => Number((await q.restore.getJob(jobId))?.progress ?? 0) >= p;

    // Killed during its safety backup, twice: the second stall fails the job.
    const a = await startWorker(box.env);
    await waitUntil('the first run to reach its safety backup', progressAtLeast(25), 60_000, 5);
    await a.kill();
    const b = await startWorker(box.env);
    await waitUntil(
      'the rerun to start',
      async () => (await q.restore.getJob(jobId))?.stalledCounter === 1 && (await q.restore.getJobState(jobId)) === 'active',
      60_000,
      5,
    );
    await b.kill();
    expect(catalog.getRestoreByJob(jobId)!.status).toBe('in_progress');

    const c = await startWorker(box.env);
    await waitUntil('the restore job to fail as stalled', async () => (await q.restore.getJobState(jobId)) === 'failed', 60_000);
    const row = await waitUntil('the reaper to settle the restore row', () => {
      const r = catalog.getRestoreByJob(jobId)!;
      return r.status === 'failed' ? r : null;
    });
    expect(row.error_message).toMatch(/abandoned: its job .* is gone/);
    const after = contentOf(box.config.databasePath);
    expect(after.integrity).toBe('ok');
    expect(['live', 'from-backup']).toContain(after.marker);
    expect(balanceSum(box.config.databasePath)).toBe(ACCOUNTS * INITIAL_BALANCE);
    // Its safety backup, if one was begun, is settled too.
    await waitUntil('no backup row in progress', () => catalog.inProgressBackups().length === 0);
    await waitUntil('no temp files', () => tempFiles(dir()).length === 0);
    catalogMatchesFiles(dir(), catalog.completedBackups());
    await c.stop();
  }, 120_000);
});

describe('graceful shutdown', () => {
  it('SIGTERM lets the running backup finish, takes no new job, releases the lock and exits 0', async () => {
    const a = await startWorker(box.env);
    const running = await queueBackup();
    await waitUntil('the backup to be writing', () => tempOf(a).length > 0, 30_000, 10);
    a.child.kill('SIGTERM');
    await a.waitFor(/shutting down/);
    const queuedLater = await queueBackup('pre-migration');
    expect((await a.exited).code).toBe(0);
    expect(a.output()).toMatch(/worker stopped/);

    expect(await jobState(running)).toBe('completed');
    expect(catalog.getBackupByJob(running)!.status).toBe('completed');
    expect(await q.lockHolder()).toBeNull();
    // Not run: still queued for another worker (handed back untouched if fetched while closing).
    expect(['waiting', 'prioritized', 'delayed']).toContain(await jobState(queuedLater));
    expect(catalog.getBackupByJob(queuedLater)).toBeUndefined();

    // A second SIGTERM does not wait for the job: the process exits at once, non-zero.
    const b = await startWorker(box.env);
    await waitUntil('the queued backup to be writing', () => tempOf(b).length > 0, 30_000, 10);
    b.child.kill('SIGTERM');
    await b.waitFor(/shutting down/);
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(1);
    expect(b.output()).toMatch(/second signal/);

    // The interrupted job is recovered like a crash.
    const c = await startWorker(box.env);
    await waitUntil('the interrupted backup to complete elsewhere', async () => (await jobState(queuedLater)) === 'completed', 60_000);
    expect(tempFiles(dir())).toEqual([]);
    catalogMatchesFiles(dir(), catalog.completedBackups());
    await c.stop();
  }, 120_000);

  it('the producer stops accepting requests, answers the one in flight, and exits 0', async () => {
    const worker = await startWorker(box.env);
    const { proc: p, url } = await startProducerProcess(box.env);
    const inFlight = request(url)
      .post('/api/backups')
      .set(auth)
      .then((r) => r);
    await waitUntil('the backup to be writing', () => tempOf(worker).length > 0, 30_000, 10);
    p.child.kill('SIGTERM');
    await p.waitFor(/draining/);
    await expect(request(url).get('/health')).rejects.toThrow(/ECONNREFUSED|socket hang up|ECONNRESET/);
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect(res.body.backup.status).toBe('completed');
    expect((await p.exited).code).toBe(0);
    expect(backupFiles(dir())).toContain(res.body.backup.fileName);
    await worker.stop();
  });
});
