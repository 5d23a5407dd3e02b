/**
 * Cancelling running jobs: a real worker process, the real Redis, a ~60 MB live database. The
 * cancel goes the way an operator's would, through Redis to whichever worker process runs the job.
 */
import type { Job, Queue } from 'bullmq';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestCancel } from '../../src/shared/jobs/cancel.js';
import { waitUntil } from '../helpers/env.js';
import { backupFiles, contentOf, createBulkyDb, inspectQueues, setMarker, tempFiles } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';
import { WebhookReceiver } from '../helpers/webhook.js';

let webhook: WebhookReceiver;
let q: ReturnType<typeof inspectQueues>;

beforeAll(async () => {
  webhook = await WebhookReceiver.start();
});
afterAll(() => webhook?.close());

// gzip of random pages is slow enough that a backup is still running when the cancel arrives;
// three attempts, so a retry would show.
const stack = useStack('cancel', {
  env: () => ({ BACKUP_COMPRESSION: 'gzip', JOB_ATTEMPTS: '3', MAX_BACKUPS: '50', ALERT_WEBHOOK_URL: webhook.url }),
  database: (file) => createBulkyDb(file, 60),
  timeoutMs: 180_000,
});

beforeAll(() => {
  q = inspectQueues(stack.box.config);
});

afterAll(() => q?.close());

const dir = () => stack.box.config.backupDir;

async function progressOf(queue: Queue, id: string): Promise<number> {
  const job = await queue.getJob(id);
  return typeof job?.progress === 'number' ? job.progress : 0;
}

/** Cancels the job once it has reached `progress`, as soon as a worker process heard the request. */
async function cancelAt(queue: Queue, job: Job, progress: number, reason: string): Promise<void> {
  await waitUntil(`job ${job.id} to reach ${progress}%`, async () => (await progressOf(queue, job.id!)) >= progress, 60_000, 10);
  const heard = await requestCancel(q.redis, stack.box.config.queuePrefix, { queue: queue.name, jobId: job.id!, reason });
  expect(heard).toBeGreaterThanOrEqual(1);
}

async function settled(queue: Queue, id: string): Promise<Job> {
  await waitUntil(`job ${id} to settle`, async () => ['completed', 'failed'].includes(await queue.getJobState(id)), 90_000);
  return (await queue.getJob(id))!;
}

describe('cancelling a job through the worker', () => {
  it('a backup cancelled before publishing fails at once with "cancelled", keeps no temp or final file, and is not retried', async () => {
    const { catalog } = stack;
    const job = await q.backup.add('manual', { type: 'manual' });
    await cancelAt(q.backup, job, 5, 'operator asked');
    const done = await settled(q.backup, job.id!);

    expect(await q.backup.getJobState(job.id!)).toBe('failed');
    expect(done.failedReason).toBe('cancelled: operator asked');
    expect(done.attemptsMade).toBe(1);
    const row = catalog.getBackupByJob(job.id!)!;
    expect(row.status).toBe('failed');
    expect(row.error_message).toBe('cancelled: operator asked');
    expect(tempFiles(dir())).toEqual([]);
    expect(backupFiles(dir())).toEqual([]);
    expect(catalog.completedBackups()).toEqual([]);
    // No page for a job someone cancelled: a verify of a missing backup, failing for good after
    // it, is the only alert.
    const missing = await q.verify.add('verify', { backupId: 999_999, mode: 'full' });
    await waitUntil('the alert of the failed verify', () =>
      webhook.deliveries.some((d) => d.body.queue === 'verify' && d.body.jobId === missing.id),
    );
    expect(webhook.deliveries.map((d) => d.body.event)).toEqual(['verify.failed']);
    // The lock went with the job: the next backup runs.
    const next = await q.backup.add('manual', { type: 'manual' });
    expect((await settled(q.backup, next.id!)).returnvalue).toMatchObject({ status: 'completed' });
  }, 180_000);

  it('a restore cancelled before its copy fails with "cancelled" and leaves the live database untouched', async () => {
    const { box, catalog } = stack;
    const [backup] = catalog.completedBackups();
    expect(backup).toBeDefined();
    setMarker(box.config.databasePath, 'written after the backup');
    const before = contentOf(box.config.databasePath);
    const filesBefore = backupFiles(dir());

    const job = await q.restore.add('restore', { backupId: backup!.id });
    // Verified (25): the cancel meets the safety backup or the last check before the copy.
    await cancelAt(q.restore, job, 25, 'wrong backup chosen');
    const done = await settled(q.restore, job.id!);

    expect(await q.restore.getJobState(job.id!)).toBe('failed');
    expect(done.failedReason).toMatch(/^cancelled: wrong backup chosen/);
    expect(done.attemptsMade).toBe(1);
    const row = catalog.getRestoreByJob(job.id!)!;
    expect(row.status).toBe('failed');
    expect(row.error_message).toMatch(/^cancelled: wrong backup chosen; the live database was not changed by this restore/);
    expect(row.restored_at).toBeNull();
    expect(contentOf(box.config.databasePath)).toEqual(before);
    expect(before.marker).toBe('written after the backup');
    expect(tempFiles(dir())).toEqual([]);
    // A safety backup cut short by the cancel leaves no file either.
    for (const name of backupFiles(dir()).filter((n) => !filesBefore.includes(n))) {
      expect(catalog.completedBackups().some((b) => b.file_path.endsWith(name))).toBe(true);
    }
  }, 180_000);

  it('a cancel for a job that is not running changes nothing', async () => {
    const { box, worker } = stack;
    expect(worker.child.exitCode).toBeNull();
    const heard = await requestCancel(q.redis, box.config.queuePrefix, { queue: 'backup', jobId: 'no-such-job' });
    expect(heard).toBeGreaterThanOrEqual(1);
    const job = await q.backup.add('manual', { type: 'manual' });
    expect((await settled(q.backup, job.id!)).returnvalue).toMatchObject({ status: 'completed' });
  }, 180_000);
});

describe('cancelling a job through the API', () => {
  it('POST /api/jobs/:id/cancel stops a running backup, takes a waiting one off its queue, and refuses a finished one', async () => {
    const { catalog, producer } = stack;
    const api = () => request(producer.server);
    const started = await api().post('/api/backups').set(auth).set('Prefer', 'respond-async');
    expect(started.status).toBe(202);
    const id = started.body.jobId as string;
    await waitUntil(`job ${id} to run`, async () => (await progressOf(q.backup, id)) >= 5, 60_000, 10);
    // A second backup while the first holds the lock: it has not started.
    const queued = await q.backup.add('manual', { type: 'manual' });

    const cancel = await api().post(`/api/jobs/${id}/cancel`).set(auth).send({ reason: 'from the API' });
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ success: true, job: { id, queue: 'backup', state: 'active' }, statusUrl: `/api/jobs/${id}` });
    expect(cancel.body.heardBy).toBeGreaterThanOrEqual(1);
    const done = await settled(q.backup, id);
    expect(done.failedReason).toBe('cancelled: from the API');
    expect(catalog.getBackupByJob(id)?.status).toBe('failed');

    // Removed from its queue, or (if a worker had just taken it) cancelled where it runs.
    const second = await api().post(`/api/jobs/${queued.id}/cancel`).set(auth);
    expect([200, 202]).toContain(second.status);
    if (second.status === 200) {
      expect(second.body.job.state).toBe('removed');
      expect(await q.backup.getJobState(queued.id!)).toBe('unknown');
      expect(catalog.getBackupByJob(queued.id!)).toBeUndefined();
    } else {
      expect((await settled(q.backup, queued.id!)).failedReason).toMatch(/^cancelled/);
    }
    await waitUntil('no temp files', () => tempFiles(dir()).length === 0, 30_000);

    const finished = await api().post(`/api/jobs/${id}/cancel`).set(auth);
    expect(finished.status).toBe(409);
    expect(finished.body).toEqual({ success: false, error: { code: 'job_finished', message: `job ${id} has already failed` } });
    expect((await api().post('/api/jobs/no-such-job/cancel').set(auth)).body.error.code).toBe('job_not_found');
    expect((await api().post(`/api/jobs/${id}/cancel`).set(auth).send({ why: 'x' })).status).toBe(400);
  }, 180_000);
});
