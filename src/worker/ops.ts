import { performance } from 'node:perf_hooks';
import type { Job, Worker } from 'bullmq';
import { alertSenderFor } from '../shared/observability/alerts.js';
import { createOpsMetrics } from '../shared/observability/metrics.js';
import { backupJobSchema } from '../shared/jobs/queues.js';
import { QUEUE_REGISTRY, isQueueName, type QueueDefinition, type QueueName } from '../shared/jobs/registry.js';
import { CancelGates, isCancelled } from '../shared/jobs/cancel.js';
import type { WorkerContext } from './context.js';
import { startHeartbeat } from './heartbeat-sender.js';
import type { JobProcessor, Processor, QueueJob } from './processor.js';

/** A job handed back to wait (the database lock was taken, or the archiver hands over on shutdown): not a failure. */
const isDelayed = (err: unknown) => ['DelayedError', 'WaitingError'].includes((err as Error | null)?.name ?? '');

/**
 * What the operator sees of a worker process, the same for every queue and kept apart from the
 * job logic (which, with what a queue does around its jobs, is in its processor): metrics around
 * every processor, a cancel gate per job, the heartbeat, alerts for jobs that fail for good.
 */
export function createWorkerOps(ctx: WorkerContext) {
  const { config, log } = ctx;
  const metrics = createOpsMetrics();
  const alerts = alertSenderFor(config, log, metrics);
  let heartbeat: { stop(): Promise<void> } | undefined;

  type Outcome = 'completed' | 'failed';
  /**
   * How a job's outcome is counted, by the counter the registry names for its queue: a queue that
   * names a new counter adds its entry here, which the type makes mandatory.
   */
  const counters: Record<QueueDefinition['metric'], (job: Job, outcome: Outcome, result: unknown) => void> = {
    backups(job, outcome) {
      const data = backupJobSchema.safeParse(job.data);
      if (data.success) metrics.backups.inc({ type: data.data.type, status: outcome });
    },
    verifications(_job, outcome, result) {
      const valid = (result as { valid?: unknown } | undefined)?.valid;
      metrics.verifications.inc({ result: outcome === 'failed' ? 'error' : valid === true ? 'valid' : 'invalid' });
    },
    walArchiver() {
      // A long-running job: its outcome is not a count worth keeping; /metrics reads its state.
    },
    restores(_job, outcome, result) {
      // A rerun of a restore that was rolled back returns its row instead of throwing again.
      const status = (result as { status?: unknown } | undefined)?.status;
      metrics.restores.inc({ status: outcome === 'completed' && status === 'completed' ? 'completed' : 'failed' });
    },
  };

  function record(queue: QueueName, job: Job, outcome: 'completed' | 'failed', result: unknown, seconds: number): void {
    metrics.duration.observe({ queue, outcome }, seconds);
    counters[QUEUE_REGISTRY[queue].metric](job, outcome, result);
  }

  /**
   * Whether a failed attempt was the job's last: a permanent error, its attempts spent, or (for
   * one failed by the stalled-job checker, whose attempts may remain) its state in Redis.
   */
  async function isFinal(job: Job, err: Error): Promise<boolean> {
    if (err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1)) return true;
    return (await job.getState().catch(() => 'unknown')) === 'failed';
  }

  function reportFailure(worker: Worker, job: Job, err: Error): void {
    if (!isQueueName(worker.name)) return;
    const queue = worker.name;
    metrics.jobsFailed.inc({ queue });
    // Someone asked for it: a page for their own decision would only teach people to ignore pages.
    if (isCancelled(err)) {
      log.warn({ queue, jobId: job.id, reason: err.message }, 'job cancelled; no alert sent');
      return;
    }
    const data = job.data as { backupId?: unknown; type?: unknown } | undefined;
    const backupId = typeof data?.backupId === 'number' ? data.backupId : undefined;
    alerts.send({
      event: QUEUE_REGISTRY[queue].failedEvent,
      summary: `${queue} job ${job.id} failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}`,
      reason: err.message,
      queue,
      jobId: String(job.id),
      attemptsMade: job.attemptsMade,
      ...(backupId !== undefined ? { backupId } : {}),
      data: job.data as unknown,
    });
  }

  return {
    metrics,
    alerts,

    /**
     * A queue's processor with metrics around it, the same for every queue. Its signal is its job's
     * cancel gate's (`ctx.gates`), which a cancel request reaches and which refuses it once the job
     * has passed its point of no return. A job its processor calls bookkeeping runs bare.
     */
    wrap<Q extends QueueName>(queue: Q, processor: Processor<Q>): JobProcessor<QueueJob<Q>, unknown> {
      return async (job, token, signal) => {
        if (processor.bookkeeping?.(job)) return processor.run(job, token, signal);
        const started = performance.now();
        const seconds = () => (performance.now() - started) / 1_000;
        let result: unknown;
        const gates = (ctx.gates ??= new CancelGates());
        const gate = gates.open(queue, String(job.id), signal);
        try {
          result = await processor.run(job, token, gate.signal);
        } catch (err) {
          // Handed back to wait is no failure; only the database lock's wait is counted.
          if (!isDelayed(err)) record(queue, job, 'failed', undefined, seconds());
          else if ((err as Error).name === 'DelayedError') metrics.lockWaits.inc({ queue });
          throw err;
        } finally {
          gates.close(queue, String(job.id), gate);
        }
        record(queue, job, 'completed', result, seconds());
        return result;
      };
    },

    /** Alerts and counts jobs that failed for good: retries spent, or a permanent error. */
    watch(worker: Worker): void {
      worker.on('failed', (job, err) => {
        if (!job || isDelayed(err)) return;
        isFinal(job, err)
          .then((final) => {
            if (final) reportFailure(worker, job, err);
          })
          .catch((e: unknown) => log.warn({ jobId: job.id, err: e }, 'could not report a failed job'));
      });
    },

    /** Begins the heartbeat; call once the workers take jobs. */
    async start(queues: string[]): Promise<void> {
      heartbeat = await startHeartbeat({
        redis: ctx.redis,
        prefix: config.queuePrefix,
        workerId: ctx.workerId,
        intervalMs: config.heartbeatInterval,
        queues,
        metrics: () => metrics.registry.getMetricsAsJSON(),
        log,
      });
    },

    /** Leaves the heartbeat set, lets alerts in flight finish (bounded). */
    async stop(): Promise<void> {
      await heartbeat?.stop();
      await alerts.flush(Math.min(config.shutdownTimeout, 5_000));
    },
  };
}

export type WorkerOps = ReturnType<typeof createWorkerOps>;
