import { toRestoreBody } from '../shared/domain/presenters.js';
import { restoreJobSchema } from '../shared/jobs/queues.js';
import { restoreLatestValid } from '../shared/operations/restore-latest-valid.js';
import { restoreOne } from '../shared/operations/restore-one.js';
import { restoreToMoment } from '../shared/operations/restore-to-moment.js';
import { classify, lockedJobRun, operationDeps, type WorkerContext } from './context.js';
import type { Processor } from './processor.js';

/** A restore job: its data is its target (`RestoreTarget`), as the API or a script gave it. */
export function restoreProcessor(ctx: WorkerContext): Processor<'restore'> {
  return {
    async run(job, token, signal) {
      const target = restoreJobSchema.parse(job.data);
      try {
        const deps = operationDeps(ctx, job);
        const run = await lockedJobRun(ctx, job, token, signal);
        switch (target.kind) {
          case 'backup':
            return toRestoreBody((await restoreOne(deps, { ...run, backupId: target.backupId })).row);
          case 'latest-valid': {
            const { row, skipped } = await restoreLatestValid(deps, run);
            return { ...toRestoreBody(row), skipped };
          }
          case 'latest':
          case 'moment': {
            const { row, wal } = await restoreToMoment(deps, { ...run, target });
            return { ...toRestoreBody(row), wal };
          }
        }
      } catch (err) {
        throw classify(err, signal);
      }
    },
  };
}
