import type { Job } from 'bullmq';
import { removeAbandonedBackupTemps } from '../shared/runtime/files.js';
import { toRestoreBody } from '../shared/domain/presenters.js';
import { restoreJobSchema, type RestoreJobData } from '../shared/jobs/queues.js';
import { restoreBackup } from '../shared/restore/restore.js';
import { classify, jobLogger, withDatabaseLock, type WorkerContext } from './context.js';

export function restoreProcessor(ctx: WorkerContext) {
  return async (job: Job<RestoreJobData>, token?: string) => {
    const data = restoreJobSchema.parse(job.data);
    const log = jobLogger(ctx, job);
    return withDatabaseLock(ctx, job, token, async (lock) => {
      try {
        // A rerun after a worker died during the safety backup finds that worker's temp file here.
        await removeAbandonedBackupTemps(ctx.config.backupDir);
        const row = await restoreBackup(
          { config: ctx.config, catalog: ctx.catalog, log },
          { backupId: data.backupId, jobId: String(job.id), lock, onProgress: (p) => job.updateProgress(p) },
        );
        return toRestoreBody(row);
      } catch (err) {
        throw classify(err);
      }
    });
  };
}
