import { Router } from 'express';
import { z } from 'zod';
import { LATEST, LATEST_VALID, restoreDedupId, restoreJobSchema } from '../../shared/jobs/queues.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { answerRestore, enqueue } from './job-answers.js';
import { generationFor } from '../../shared/operations/restore-latest.js';

const TARGETS = `expected "${LATEST_VALID}" (the newest backup that passes full verification), "${LATEST}" (the last archived commit) or an ISO-8601 time with its offset (2026-11-25T12:00:00Z)`;

/** Where to restore to: the newest valid backup, the last commit the WAL archive holds, or a moment in its window. */
const restoreBody = z
  .object({
    to: z
      .string({ message: TARGETS })
      .refine((v) => v === LATEST || v === LATEST_VALID || z.iso.datetime({ offset: true }).safeParse(v).success, { message: TARGETS }),
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
    if (to !== LATEST && to !== LATEST_VALID) {
      // Refused here, before anything is queued, when the archive cannot reach it; the worker checks again.
      const at = new Date(to);
      generationFor(deps.catalog, at);
      const job = await enqueue(queues.restore, restoreJobSchema.parse({ at: at.toISOString() }), restoreDedupId(at));
      await answerRestore(deps, req, res, job);
      return;
    }
    const job = await enqueue(queues.restore, restoreJobSchema.parse({ to }), restoreDedupId(to));
    await answerRestore(deps, req, res, job);
  });

  return router;
}
