import type { Job } from 'bullmq';
import { notFound } from '../shared/domain/errors.js';
import { verifyJobSchema, type VerifyJobData } from '../shared/jobs/queues.js';
import { verifyAndRecord } from '../shared/verify/verify.js';
import { classify, jobLogger, type WorkerContext } from './context.js';

/**
 * Verify jobs only read backup files, so they take no database lock and run beside backups and
 * each other. A lease keeps retention from deleting the file under them.
 */
export function verifyProcessor(ctx: WorkerContext) {
  return async (job: Job<VerifyJobData>) => {
    const data = verifyJobSchema.parse(job.data);
    const log = jobLogger(ctx, job);
    const holder = `verify:${job.id}`;
    try {
      const backup = ctx.catalog.getBackup(data.backupId);
      if (!backup) throw notFound(`backup ${data.backupId} does not exist`, 'backup_not_found');
      if (backup.status !== 'completed') {
        return { backupId: backup.id, valid: false, message: `backup is ${backup.status}, not completed`, checks: [] };
      }
      ctx.catalog.lease(backup.id, holder, 24 * 3_600_000);
      await job.updateProgress(10);
      const result = await verifyAndRecord(ctx.config, ctx.catalog, backup, data.mode);
      await job.updateProgress(100);
      log.info({ backupId: backup.id, valid: result.valid, message: result.message }, 'verification finished');
      return { backupId: backup.id, mode: data.mode, valid: result.valid, message: result.message, checks: result.checks };
    } catch (err) {
      throw classify(err);
    } finally {
      ctx.catalog.unlease(data.backupId, holder);
    }
  };
}
