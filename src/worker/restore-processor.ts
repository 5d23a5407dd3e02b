import type { Job } from 'bullmq';
import { toRestoreBody } from '../shared/domain/presenters.js';
import { LATEST, restoreJobSchema, type RestoreJobData } from '../shared/jobs/queues.js';
import { restoreLatest } from '../shared/operations/restore-latest.js';
import { restoreLatestValid } from '../shared/operations/restore-latest-valid.js';
import { restoreOne } from '../shared/operations/restore-one.js';
import { classify, lockedJobRun, operationDeps, type WorkerContext } from './context.js';

export function restoreProcessor(ctx: WorkerContext) {
  return async (job: Job<RestoreJobData>, token: string | undefined, signal: AbortSignal | undefined) => {
    const data = restoreJobSchema.parse(job.data);
    try {
      const deps = operationDeps(ctx, job);
      const run = await lockedJobRun(ctx, job, token, signal);
      if ('backupId' in data) return toRestoreBody((await restoreOne(deps, { ...run, backupId: data.backupId })).row);
      if ('at' in data) {
        const { row, wal } = await restoreLatest(deps, { ...run, at: new Date(data.at) });
        return { ...toRestoreBody(row), wal };
      }
      if (data.to === LATEST) {
        const { row, wal } = await restoreLatest(deps, run);
        return { ...toRestoreBody(row), wal };
      }
      const { row, skipped } = await restoreLatestValid(deps, run);
      return { ...toRestoreBody(row), skipped };
    } catch (err) {
      throw classify(err, signal);
    }
  };
}
