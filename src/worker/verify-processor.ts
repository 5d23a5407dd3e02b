import type { Job } from 'bullmq';
import {
  QUEUE,
  RESTORE_DRILL_JOB,
  VERIFY_ARCHIVE_JOB,
  restoreDrillJobSchema,
  verifyArchiveJobSchema,
  verifyJobSchema,
  type VerifyJobData,
} from '../shared/jobs/queues.js';
import { verifyOne } from '../shared/operations/verify-one.js';
import { verifyArchive } from '../shared/wal/archive-verify.js';
import { runDrill } from '../shared/operations/restore-drill.js';
import { alertDrillFailed } from '../shared/wal/drill.js';
import { recoveryWindow } from '../shared/wal/window.js';
import { classify, jobLogger, jobRun, operationDeps, type WorkerContext } from './context.js';

/**
 * Verify jobs only read backup files: no database lock, so they run beside backups and each other.
 * The same queue verifies the WAL archive (`verify-archive`) and runs restore drills
 * (`restore-drill`), which also only read and write temp files.
 */
export function verifyProcessor(ctx: WorkerContext) {
  return async (job: Job<VerifyJobData>, _token: string | undefined, signal: AbortSignal | undefined) => {
    if (job.name === VERIFY_ARCHIVE_JOB) return archiveVerification(ctx, job, signal);
    if (job.name === RESTORE_DRILL_JOB) return drill(ctx, job, signal);
    const data = verifyJobSchema.parse(job.data);
    try {
      const outcome = await verifyOne(operationDeps(ctx, job), { ...jobRun(ctx, job, signal, `verify:${job.id}`), ...data });
      const { backup, mode } = outcome;
      // A backup that is not completed is no job failure: it is simply not valid to restore.
      if (!outcome.completed) return { backupId: backup.id, valid: false, message: outcome.message, checks: [] };
      const { valid, message, checks } = outcome.result;
      return { backupId: backup.id, mode, valid, message, checks };
    } catch (err) {
      throw classify(err, signal);
    }
  };
}

/**
 * Every generation of the archive checked; a broken one raises `verify.invalid` naming its first
 * bad segment, and the recovery window (read from the recorded outcome) ends before it.
 */
async function archiveVerification(ctx: WorkerContext, job: Job, signal: AbortSignal | undefined) {
  verifyArchiveJobSchema.parse(job.data);
  try {
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
  } catch (err) {
    throw classify(err, signal);
  }
}

/** A restore drill; a failed drill is recorded and alerted (`drill.failed`), and the job completes. */
async function drill(ctx: WorkerContext, job: Job, signal: AbortSignal | undefined) {
  const data = restoreDrillJobSchema.parse(job.data);
  try {
    const outcome = await runDrill(ctx, { trigger: data.drill, runId: `drill-${String(job.id).replace(/[^A-Za-z0-9_-]/g, '-')}`, signal });
    if (!outcome.ok && ctx.alerts) alertDrillFailed(ctx.alerts, outcome, { queue: QUEUE.verify, jobId: String(job.id) });
    jobLogger(ctx, job).info({ drill: outcome.id, ok: outcome.ok, durationMs: outcome.durationMs }, 'restore drill finished');
    await job.updateProgress(100);
    return { drill: outcome, valid: outcome.ok };
  } catch (err) {
    throw classify(err, signal);
  }
}
