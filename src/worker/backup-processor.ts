import type { Job } from 'bullmq';
import { toBackupBody } from '../shared/domain/presenters.js';
import { backupJobSchema, type BackupJobData } from '../shared/jobs/queues.js';
import { backupNow } from '../shared/operations/backup-now.js';
import { classify, lockedJobRun, operationDeps, type WorkerContext } from './context.js';

export function backupProcessor(ctx: WorkerContext) {
  return async (job: Job<BackupJobData>, token: string | undefined, signal: AbortSignal | undefined) => {
    const data = backupJobSchema.parse(job.data);
    try {
      const { row } = await backupNow(operationDeps(ctx, job), { ...(await lockedJobRun(ctx, job, token, signal)), type: data.type });
      return toBackupBody(row);
    } catch (err) {
      throw classify(err, signal);
    }
  };
}
