import { Router } from 'express';
import { z } from 'zod';
import { toRestoreBody } from '../../shared/domain/presenters.js';
import { LATEST_VALID, restoreDedupId, restoreJobSchema } from '../../shared/jobs/queues.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { TIMED_OUT, accepted, enqueue, waitFor, wantsAsync } from './backups.js';

/** Where to restore to. Only the newest valid backup today; points in time come with WAL archiving. */
const restoreBody = z
  .object({
    to: z.literal(LATEST_VALID, { message: `expected "${LATEST_VALID}" (the newest backup that passes full verification)` }),
  })
  .strict();

/**
 * `POST /api/restores`: a restore whose backup the worker chooses when the job runs. Answers as
 * `POST /api/backups/:id/restore` does, plus the newer backups passed over (`skipped`).
 */
export function restoresRouter(deps: ProducerDeps): Router {
  const { config, catalog, queues } = deps;
  const router = Router();

  router.post('/', async (req, res) => {
    parseBody(restoreBody, req.body);
    const job = await enqueue(queues.restore, restoreJobSchema.parse({ to: LATEST_VALID }), restoreDedupId(LATEST_VALID));
    if (wantsAsync(req)) return accepted(res, job, 'Restore');
    let outcome: { skipped?: unknown } | typeof TIMED_OUT;
    try {
      outcome = await waitFor(job, queues.events.restore, config.requestTimeout);
    } catch (err) {
      const row = catalog.getRestoreByJob(String(job.id));
      res.status(422).json({
        success: false,
        error: { code: 'restore_failed', message: (err as Error).message },
        ...(row ? { restore: toRestoreBody(row) } : {}),
      });
      return;
    }
    if (outcome === TIMED_OUT) return accepted(res, job, 'Restore');
    const row = catalog.getRestoreByJob(String(job.id))!;
    res.json({
      success: true,
      message: 'Backup restored successfully; no restart needed',
      restore: toRestoreBody(row),
      skipped: outcome.skipped ?? [],
    });
  });

  return router;
}
