import type { Job } from 'bullmq';
import { createBackup } from '../shared/backup/backup.js';
import { toBackupBody } from '../shared/domain/presenters.js';
import { backupJobSchema, type BackupJobData } from '../shared/jobs/queues.js';
import { applyRetention } from '../shared/backup/retention.js';
import { currentSettings } from '../shared/catalog/settings.js';
import { removeAbandonedBackupTemps } from '../shared/runtime/files.js';
import { classify, jobLogger, withDatabaseLock, type WorkerContext } from './context.js';

export function backupProcessor(ctx: WorkerContext) {
  return async (job: Job<BackupJobData>, token?: string) => {
    const data = backupJobSchema.parse(job.data);
    const log = jobLogger(ctx, job);
    return withDatabaseLock(ctx, job, token, async (lock) => {
      try {
        await removeAbandonedBackupTemps(ctx.config.backupDir);
        const row = await createBackup(
          { config: ctx.config, catalog: ctx.catalog, log },
          { type: data.type, jobId: String(job.id), lock, onProgress: (p) => job.updateProgress(p) },
        );
        await applyRetention(ctx.catalog, currentSettings(ctx.config, ctx.catalog).maxBackups, log, ctx.config);
        return toBackupBody(row);
      } catch (err) {
        throw classify(err);
      }
    });
  };
}
