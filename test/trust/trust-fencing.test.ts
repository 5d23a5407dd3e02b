/**
 * Fencing a restoring worker that was paused (SIGSTOP, as a long GC or a frozen VM would) past its
 * database lock, after its last check in the main thread and before its copy wrote anything, while
 * another worker restored a different backup: real worker processes, the real Redis, real files.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/env.js';
import { contentOf, createBulkyDb, inspectQueues, setMarker, startWorker } from '../helpers/faults.js';
import { killAll } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';

const backups: Record<'x' | 'y', { id: number; digest: string }> = {} as never;
let q: ReturnType<typeof inspectQueues>;

// Workers A and B are the test's own: it pauses, resumes and stops each of them.
const stack = useStack('trust-fencing', {
  env: {
    // The database lock (Redis TTL, and the file lock's stale time) runs out 2 s into the pause;
    // the job's own BullMQ lock does not, so no stalled-job rerun muddles who wrote last.
    LOCK_TTL: '2000',
    JOB_LOCK_DURATION: '120000',
    STALLED_INTERVAL: '60000',
    RESTORE_BUSY_TIMEOUT: '120000',
    MAX_BACKUPS: '50',
  },
  database: (file) => createBulkyDb(file, 8, 'X'),
  async prepare(file, box) {
    for (const name of ['x', 'y'] as const) {
      setMarker(file, name.toUpperCase());
      const run = await runCli(box.env, 'backup', '--json');
      expect(run.code, run.stderr).toBe(0);
      backups[name] = { id: run.json.backup.id as number, digest: contentOf(run.json.backup.filePath as string).digest };
    }
    setMarker(file, 'live');
  },
  workers: 0,
  timeoutMs: 120_000,
});

beforeAll(() => {
  q = inspectQueues(stack.box.config);
});

afterEach(async () => {
  await killAll();
});

afterAll(() => q?.close());

async function queueRestore(backupId: number): Promise<string> {
  const res = await request(stack.producer.server).post(`/api/backups/${backupId}/restore`).set(auth).set('Prefer', 'respond-async');
  expect(res.status).toBe(202);
  return res.body.jobId as string;
}

describe('a restoring worker paused past its lock', () => {
  it('does not copy over the restore another worker made meanwhile, and fails with the lock lost', async () => {
    const { box, catalog } = stack;
    const a = await startWorker(box.env);
    // The application holds a write transaction, so A's copy waits inside its SQLite thread,
    // after A's last lock check in the main thread.
    const app = new Database(box.config.databasePath);
    app.exec('BEGIN IMMEDIATE');
    const jobA = await queueRestore(backups.x.id);
    await waitUntil(
      'A to reach the copy',
      async () => Number((await q.restore.getJob(jobA))?.progress ?? 0) >= 60 && Boolean(catalog.getRestoreByJob(jobA)?.safety_backup_id),
      60_000,
      20,
    );
    // Long enough for A's check and its thread to start and wait on the live database.
    await new Promise((r) => setTimeout(r, 2_000));
    a.child.kill('SIGSTOP');
    app.exec('ROLLBACK');
    app.close();

    // Meanwhile another worker takes the expired lock and restores Y.
    const b = await startWorker(box.env);
    const jobB = await queueRestore(backups.y.id);
    await waitUntil('B to restore Y', async () => (await q.restore.getJobState(jobB)) === 'completed', 90_000);
    expect(contentOf(box.config.databasePath).digest).toBe(backups.y.digest);

    a.child.kill('SIGCONT');
    await waitUntil('A to give up', async () => (await q.restore.getJobState(jobA)) === 'failed', 60_000);

    // A's copy never landed: the live database holds Y, whole.
    const after = contentOf(box.config.databasePath);
    expect(after.integrity).toBe('ok');
    expect(after.marker).toBe('Y');
    expect(after.digest).toBe(backups.y.digest);
    const rowA = catalog.getRestoreByJob(jobA)!;
    expect(rowA.status).toBe('failed');
    expect(rowA.restored_at).toBeNull();
    expect(rowA.error_message).toMatch(/^lock lost: /);
    expect(rowA.error_message).toMatch(/not changed by this restore/);
    // Failed for good, not retried later over whatever happened since.
    const job = (await q.restore.getJob(jobA))!;
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/lock lost/);
    expect(catalog.getRestoreByJob(jobB)!.status).toBe('completed');
    // A stays a working worker: the next restore it takes completes.
    await b.stop();
    const jobC = await queueRestore(backups.x.id);
    await waitUntil('A to restore X afterwards', async () => (await q.restore.getJobState(jobC)) === 'completed', 90_000);
    expect(contentOf(box.config.databasePath).digest).toBe(backups.x.digest);
    await a.stop();
  }, 240_000);
});
