import { Router } from 'express';
import { z } from 'zod';
import { RESTORE_TO_FORMS, parseRestoreTo } from '../../shared/domain/restore-target.js';
import { restoreDedupId } from '../../shared/jobs/queues.js';
import { planArchiveRestore } from '../../shared/wal/restore-plan.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { answerRestore, enqueue } from './job-answers.js';

const TARGETS = `expected ${RESTORE_TO_FORMS}`;

/** Where to restore to: the newest valid backup, the last commit the WAL archive holds, or a moment in its window. */
const restoreBody = z
  .object({
    to: z.string({ message: TARGETS }).transform((to, ctx) => {
      const target = parseRestoreTo(to);
      if (!target) ctx.addIssue({ code: 'custom', message: TARGETS });
      return target ?? z.NEVER;
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
    const { to: target } = parseBody(restoreBody, req.body);
    // Refused here, before anything is queued, when the archive cannot reach it; the worker decides again when it runs.
    if (target.kind === 'moment') planArchiveRestore(deps.catalog, target);
    const job = await enqueue(queues.restore, target, restoreDedupId(target));
    await answerRestore(deps, req, res, job);
  });

  return router;
}
