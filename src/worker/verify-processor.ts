import type { Job } from 'bullmq';
import { verifyJobSchema, type VerifyJobData } from '../shared/jobs/queues.js';
import { verifyOne } from '../shared/operations/verify-one.js';
import { classify, jobRun, operationDeps, type WorkerContext } from './context.js';

/** Verify jobs only read backup files: no database lock, so they run beside backups and each other. */
export function verifyProcessor(ctx: WorkerContext) {
  return async (job: Job<VerifyJobData>, _token: string | undefined, signal: AbortSignal | undefined) => {
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
