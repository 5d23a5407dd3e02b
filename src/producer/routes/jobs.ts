import { Router } from 'express';
import { badRequest, notFound } from '../../shared/domain/errors.js';
import type { ProducerDeps } from '../deps.js';

/** `GET /api/jobs/:id`: where a queued backup, verify or restore job stands. */
export function jobsRouter({ queues }: ProducerDeps): Router {
  const router = Router();
  router.get('/:id', async (req, res) => {
    const id = req.params.id;
    if (!/^[A-Za-z0-9:_-]{1,200}$/.test(id)) throw badRequest('invalid job id', 'invalid_id');
    for (const queue of queues.all()) {
      // State first, then the job: a job read before it finished and a state read after would
      // show `completed` with no result. Completion writes both at once, so this order cannot.
      const state = await queue.getJobState(id);
      if (state === 'unknown') continue;
      const job = await queue.getJob(id);
      if (!job) continue;
      res.json({
        success: true,
        job: {
          id: job.id,
          queue: queue.name,
          state,
          progress: job.progress,
          attemptsMade: job.attemptsMade,
          data: job.data as unknown,
          result: state === 'completed' ? (job.returnvalue as unknown) : null,
          error: state === 'failed' ? job.failedReason : null,
          createdAt: new Date(job.timestamp).toISOString(),
          processedAt: job.processedOn ? new Date(job.processedOn).toISOString() : null,
          finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
        },
      });
      return;
    }
    throw notFound(`job ${id} does not exist (finished jobs are kept for a limited time)`, 'job_not_found');
  });
  return router;
}
