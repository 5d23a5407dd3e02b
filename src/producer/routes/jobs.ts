import { Router } from 'express';
import { z } from 'zod';
import type { Job, Queue } from 'bullmq';
import { AppError, badRequest, notFound } from '../../shared/domain/errors.js';
import { askToCancel } from '../../shared/jobs/cancel.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';

const jobId = (id: string) => {
  if (!/^[A-Za-z0-9:_-]{1,200}$/.test(id)) throw badRequest('invalid job id', 'invalid_id');
  return id;
};

const cancelBody = z.object({ reason: z.string().min(1).max(200).optional() }).strict();

/** States in which a job has not started: it can simply be taken off its queue. */
const NOT_STARTED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/**
 * How long a cancel waits for the worker running the job to say whether it took it; without an
 * answer by then (no process runs it any more), the request stands as asked, as a 202.
 */
const ANSWER_WAIT_MS = 2_000;

/**
 * `GET /api/jobs/:id`: where a queued backup, verify or restore job stands.
 * `POST /api/jobs/:id/cancel`: takes a job that has not started off its queue, or asks the worker
 * running it to stop at its next safe point (a backup not yet published, a restore not yet copied);
 * the job then fails with `cancelled: <reason>`, without retry or alert. A restore whose copy into
 * the live database has begun refuses it (409 `restore_copying`) and finishes.
 */
export function jobsRouter({ queues, redis, config }: ProducerDeps): Router {
  const router = Router();

  async function find(id: string): Promise<{ queue: Queue; job: Job; state: string } | undefined> {
    for (const queue of queues.all()) {
      const state = await queue.getJobState(id);
      if (state === 'unknown') continue;
      const job = await queue.getJob(id);
      if (job) return { queue, job, state };
    }
    return undefined;
  }

  router.post('/:id/cancel', async (req, res) => {
    const id = jobId(req.params.id);
    const { reason = 'cancelled through the API' } = parseBody(cancelBody, req.body ?? {});
    const found = await find(id);
    if (!found) throw notFound(`job ${id} does not exist (finished jobs are kept for a limited time)`, 'job_not_found');
    const { queue, job, state } = found;
    if (state === 'completed' || state === 'failed') throw new AppError('job_finished', `job ${id} has already ${state}`, true);
    if (NOT_STARTED.has(state)) {
      // remove() refuses a job a worker has just locked: that one is cancelled where it runs.
      const removed = await job.remove().then(
        () => true,
        () => false,
      );
      if (removed) {
        res.json({ success: true, message: `job ${id} was removed before it ran`, job: { id, queue: queue.name, state: 'removed' } });
        return;
      }
    }
    const { heardBy, answer } = await askToCancel(redis, config.queuePrefix, { queue: queue.name, jobId: id, reason }, ANSWER_WAIT_MS);
    if (answer === 'refused') {
      throw new AppError(
        'restore_copying',
        `job ${id} is copying the backup into the live database and can no longer be cancelled: it will finish, or roll back to its safety backup; follow it at /api/jobs/${id}`,
        true,
      );
    }
    res.status(202).json({
      success: true,
      message: `asked the worker running job ${id} to stop at its next safe point; follow it at /api/jobs/${id}`,
      job: { id, queue: queue.name, state },
      statusUrl: `/api/jobs/${id}`,
      heardBy,
    });
  });

  router.get('/:id', async (req, res) => {
    const id = jobId(req.params.id);
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
