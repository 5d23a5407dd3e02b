import { Router } from 'express';
import { z } from 'zod';
import { LATEST, LATEST_VALID, restoreDedupId, restoreJobSchema } from '../../shared/jobs/queues.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { answerRestore, enqueue } from './job-answers.js';

/** Where to restore to: the newest valid backup, or the last commit the WAL archive holds. */
const restoreBody = z
  .object({
    to: z.enum([LATEST_VALID, LATEST], {
      message: `expected "${LATEST_VALID}" (the newest backup that passes full verification) or "${LATEST}" (the last archived commit)`,
    }),
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
    const { to } = parseBody(restoreBody, req.body);
    const job = await enqueue(queues.restore, restoreJobSchema.parse({ to }), restoreDedupId(to));
    await answerRestore(deps, req, res, job);
  });

  return router;
}
