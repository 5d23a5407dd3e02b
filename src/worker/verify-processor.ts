import { QUEUE, verifyJobSchema, verifyJobToAdd, type VerifyJob } from '../shared/jobs/queues.js';
import { runDrill } from '../shared/operations/restore-drill.js';
import { verifyOne } from '../shared/operations/verify-one.js';
import { verifyArchive } from '../shared/wal/archive-verify.js';
import { alertDrillFailed } from '../shared/wal/drill.js';
import { recoveryWindow } from '../shared/wal/window.js';
import { classify, jobLogger, jobRun, operationDeps, type WorkerContext } from './context.js';
import { derivedId, followUpQueue, type FollowUpQueue, type Processor, type QueueJob } from './processor.js';

type Of<K extends VerifyJob['kind']> = Extract<VerifyJob, { kind: K }>;

/**
 * The verify queue's jobs, by kind: a backup's verification, the WAL archive's, a restore drill,
 * and the scheduled sweep that queues the others. None takes the database lock, so they run
 * beside backups and each other: they only read backup files and write temp files.
 */
export function verifyProcessor(ctx: WorkerContext): Processor<'verify'> {
  const verifyQueue = followUpQueue(ctx, QUEUE.verify);
  return {
    async run(job, _token, signal) {
      const data = verifyJobSchema.parse(job.data);
      if (data.kind === 'sweep') return sweep(ctx, job, verifyQueue);
      try {
        switch (data.kind) {
          case 'backup':
            return await backupVerification(ctx, job, data, signal);
          case 'archive':
            return await archiveVerification(ctx, job, signal);
          case 'drill':
            return await drill(ctx, job, data, signal);
        }
      } catch (err) {
        throw classify(err, signal);
      }
    },
    bookkeeping: (job) => verifyJobSchema.safeParse(job.data).data?.kind === 'sweep',
    close: verifyQueue.close,
  };
}

/** A backup verified; an invalid one raises `verify.invalid` (a backup that is not completed is simply not valid: no job failure). */
async function backupVerification(ctx: WorkerContext, job: QueueJob<'verify'>, data: Of<'backup'>, signal: AbortSignal | undefined) {
  const outcome = await verifyOne(operationDeps(ctx, job), {
    ...jobRun(ctx, job, signal, `verify:${job.id}`),
    backupId: data.backupId,
    mode: data.mode,
  });
  const { backup, mode } = outcome;
  const result = outcome.completed
    ? { backupId: backup.id, mode, valid: outcome.result.valid, message: outcome.result.message, checks: outcome.result.checks }
    : { backupId: backup.id, valid: false, message: outcome.message, checks: [] };
  if (!result.valid) {
    ctx.alerts?.send({
      event: 'verify.invalid',
      summary: `backup ${result.backupId} failed verification`,
      reason: result.message ?? 'invalid',
      queue: QUEUE.verify,
      jobId: String(job.id),
      backupId: result.backupId,
    });
  }
  return result;
}

/**
 * Every generation of the archive checked; a broken one raises `verify.invalid` naming its first
 * bad segment, and the recovery window (read from the recorded outcome) ends before it.
 */
async function archiveVerification(ctx: WorkerContext, job: QueueJob<'verify'>, signal: AbortSignal | undefined) {
  const result = await verifyArchive(ctx.config, ctx.catalog, signal);
  const window = recoveryWindow(ctx.catalog);
  for (const g of result.generations.filter((x) => !x.ok)) {
    ctx.alerts?.send({
      event: 'verify.invalid',
      summary: g.firstBad
        ? `the WAL archive is broken at segment ${g.firstBad.seq} (${g.firstBad.file}) of generation ${g.generation}: the recovery window ends before it`
        : `the snapshot of WAL generation ${g.generation} failed verification: the generation is out of the recovery window`,
      reason: g.reason ?? 'invalid',
      queue: QUEUE.verify,
      jobId: String(job.id),
      ...(g.snapshot.backupId !== null ? { backupId: g.snapshot.backupId } : {}),
      data: { generation: g.generation, firstBad: g.firstBad },
    });
  }
  jobLogger(ctx, job).info({ ok: result.ok, generations: result.generations.length }, 'WAL archive verified');
  await job.updateProgress(100);
  return {
    archive: true,
    valid: result.ok,
    generations: result.generations,
    window: { earliest: window.earliest, latest: window.latest },
  };
}

/** A restore drill; a failed drill is recorded and alerted (`drill.failed`), and the job completes. */
async function drill(ctx: WorkerContext, job: QueueJob<'verify'>, data: Of<'drill'>, signal: AbortSignal | undefined) {
  const outcome = await runDrill(ctx, { trigger: data.trigger, runId: derivedId('drill', job.id), signal });
  if (!outcome.ok && ctx.alerts) alertDrillFailed(ctx.alerts, outcome, { queue: QUEUE.verify, jobId: String(job.id) });
  jobLogger(ctx, job).info({ drill: outcome.id, ok: outcome.ok, durationMs: outcome.durationMs }, 'restore drill finished');
  await job.updateProgress(100);
  return { drill: outcome, valid: outcome.ok };
}

/**
 * The scheduled verification: one verify job per kept backup, idempotent per run. A backup whose
 * full verify is still pending (a slow earlier sweep, a click in the API) keeps that one job; and
 * one verification of the WAL archive, when it holds anything.
 */
async function sweep(
  ctx: WorkerContext,
  job: QueueJob<'verify'>,
  verifyQueue: FollowUpQueue<'verify'>,
): Promise<{ queued: number; backupIds: number[] }> {
  const backups = ctx.catalog.completedBackups();
  await verifyQueue
    .get()
    .addBulk(
      backups.map((b) => verifyJobToAdd({ kind: 'backup', backupId: b.id, mode: 'full' }, derivedId('sweep', job.id, 'backup', b.id))),
    );
  if (ctx.catalog.wal.generations().length) {
    const { name, data, opts } = verifyJobToAdd({ kind: 'archive' }, derivedId('sweep', job.id, 'archive'));
    await verifyQueue.get().add(name, data, opts);
  }
  await job.updateProgress(100);
  ctx.log.info({ jobId: job.id, backups: backups.length }, 'scheduled verification queued a verify job per kept backup');
  return { queued: backups.length, backupIds: backups.map((b) => b.id) };
}
