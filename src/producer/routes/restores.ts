import { Router } from 'express';
import { z } from 'zod';
import { LATEST_VALID, restoreDedupId, restoreJobSchema } from '../../shared/jobs/queues.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { answerRestore, enqueue } from './job-answers.js';

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
  const { queues } = deps;
  const router = Router();

  router.post('/', async (req, res) => {
    parseBody(restoreBody, req.body);
    const job = await enqueue(queues.restore, restoreJobSchema.parse({ to: LATEST_VALID }), restoreDedupId(LATEST_VALID));
    await answerRestore(deps, req, res, job);
  });

  return router;
}
