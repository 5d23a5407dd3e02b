import { performance } from 'node:perf_hooks';
import { Queue, type Job, type Worker } from 'bullmq';
import { alertSenderFor } from '../shared/observability/alerts.js';
import { codeOf, messageOf } from '../shared/domain/errors.js';
import { createOpsMetrics } from '../shared/observability/metrics.js';
import {
  QUEUE,
  VERIFY_ARCHIVE_DEDUP_ID,
  VERIFY_ARCHIVE_JOB,
  backupJobSchema,
  defaultJobOptions,
  verifyDedupId,
  type QueueName,
  type VerifyArchiveJobData,
  type VerifyJobData,
} from '../shared/jobs/queues.js';
import { QUEUE_REGISTRY, isQueueName, type QueueDefinition } from '../shared/jobs/registry.js';
import { CancelGates, isCancelled } from '../shared/jobs/cancel.js';
import { VERIFY_SWEEP_JOB, verifySweepJobSchema } from '../shared/jobs/scheduler.js';
import { currentSettings } from '../shared/catalog/settings.js';
import { takeUnannouncedOutage } from '../shared/storage/mirror.js';
import { storesOf } from '../shared/storage/registry.js';
import type { WorkerContext } from './context.js';
import { startHeartbeat } from './heartbeat-sender.js';

/** Three parameters: BullMQ only creates a job's AbortController for a processor declared with three. */
export type JobProcessor<J extends Job, R> = (job: J, token: string | undefined, signal: AbortSignal | undefined) => Promise<R>;

/** A job id of ours made from another (a scheduler's ids contain `:`, which custom ids may not). */
const derivedId = (...parts: (string | number | undefined)[]) => parts.map((p) => String(p).replace(/[^A-Za-z0-9_-]/g, '-')).join('-');

/** Failures of a backup that mean the live database itself is damaged. */
const DAMAGE_CODES = new Set(['database_damaged', 'database_unreadable']);

/** A job handed back to wait (the database lock was taken, or the archiver hands over on shutdown): not a failure. */
const isDelayed = (err: unknown) => ['DelayedError', 'WaitingError'].includes((err as Error | null)?.name ?? '');

/**
 * What the operator sees of a worker process, kept apart from the job logic: metrics around
 * every processor, the heartbeat, alerts for jobs that fail for good, a verify job after each
 * backup (VERIFY_AFTER_BACKUP) and the fan-out of the scheduled verification (VERIFY_SCHEDULE).
 */
export function createWorkerOps(ctx: WorkerContext) {
  const { config, catalog, log } = ctx;
  const metrics = createOpsMetrics();
  const alerts = alertSenderFor(config, log, metrics);
  // Follow-up verify jobs go through the queue like any other, so they show on the board: a
  // backup's verification, and the WAL archive's that the scheduled sweep adds.
  const verifyQueue = new Queue<VerifyJobData | VerifyArchiveJobData>(QUEUE.verify, {
    connection: ctx.redis,
    prefix: config.queuePrefix,
    defaultJobOptions: defaultJobOptions(config),
  });
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

  /** One `mirror.failed` alert per outage: the first backup whose copy failed after copies worked. */
  function announceMirrorOutage(job: Job): void {
    const outage = takeUnannouncedOutage(catalog);
    if (!outage) return;
    alerts.send({
      event: 'mirror.failed',
      summary: `copies to the mirror ${storesOf(config).mirror?.location ?? ''} are failing; backups are kept locally and copied when it is back`,
      reason: outage.reason,
      queue: QUEUE.backup,
      jobId: String(job.id),
      lastSuccessfulBackup: catalog.lastSuccessfulBackup()?.completed_at ?? null,
    });
  }

  async function verifyAfterBackup(job: Job, result: unknown): Promise<void> {
    const backupId = (result as { id?: unknown; status?: unknown }).id;
    if (typeof backupId !== 'number' || !currentSettings(config, catalog).verifyAfterBackup) return;
    try {
      await verifyQueue.add(
        'verify',
        { backupId, mode: 'full' },
        { jobId: derivedId('verify-after', job.id), deduplication: { id: verifyDedupId(backupId, 'full') } },
      );
    } catch (err) {
      // The backup itself is done and recorded; a missed follow-up must not fail it.
      log.warn({ backupId, err }, 'could not queue the verification after a backup');
    }
  }

  /**
   * The scheduled verification: one verify job per kept backup, idempotent per run. A backup whose
   * full verify is still pending (a slow earlier sweep, a click in the API) keeps that one job.
   */
  async function sweep(job: Job): Promise<{ queued: number; backupIds: number[] }> {
    verifySweepJobSchema.parse(job.data);
    const backups = catalog.completedBackups();
    await verifyQueue.addBulk(
      backups.map((b) => ({
        name: 'verify',
        data: { backupId: b.id, mode: 'full' as const },
        opts: { jobId: derivedId('sweep', job.id, 'backup', b.id), deduplication: { id: verifyDedupId(b.id, 'full') } },
      })),
    );
    // And one verification of the WAL archive, when it holds anything.
    if (catalog.wal.generations().length) {
      const archive: VerifyArchiveJobData = { archive: true };
      await verifyQueue.add(VERIFY_ARCHIVE_JOB, archive, {
        jobId: derivedId('sweep', job.id, 'archive'),
        deduplication: { id: VERIFY_ARCHIVE_DEDUP_ID },
      });
    }
    await job.updateProgress(100);
    log.info({ jobId: job.id, backups: backups.length }, 'scheduled verification queued a verify job per kept backup');
    return { queued: backups.length, backupIds: backups.map((b) => b.id) };
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
     * The processor with metrics around it (and, for its queue, the follow-ups above). Its signal is
     * its job's cancel gate's (`ctx.gates`), which a cancel request reaches and which refuses it
     * once the job has passed its point of no return.
     */
    wrap<J extends Job, R>(queue: QueueName, processor: JobProcessor<J, R>): JobProcessor<J, R> {
      return async (job, token, signal) => {
        if (queue === QUEUE.verify && job.name === VERIFY_SWEEP_JOB) return (await sweep(job)) as R;
        const started = performance.now();
        const seconds = () => (performance.now() - started) / 1_000;
        let result: R;
        const gates = (ctx.gates ??= new CancelGates());
        const gate = gates.open(queue, String(job.id), signal);
        try {
          result = await processor(job, token, gate.signal);
        } catch (err) {
          // Handed back to wait is no failure; only the database lock's wait is counted.
          if (!isDelayed(err)) record(queue, job, 'failed', undefined, seconds());
          else if ((err as Error).name === 'DelayedError') metrics.lockWaits.inc({ queue });
          if (queue === QUEUE.backup && DAMAGE_CODES.has(codeOf(err) ?? '')) {
            alerts.send({
              event: 'database.damaged',
              summary: `the live database ${config.databasePath} is damaged; the backup was refused and older backups are kept`,
              reason: messageOf(err),
              queue,
              jobId: String(job.id),
              lastSuccessfulBackup: catalog.lastSuccessfulBackup()?.completed_at ?? null,
            });
          }
          throw err;
        } finally {
          gates.close(queue, String(job.id), gate);
        }
        record(queue, job, 'completed', result, seconds());
        if (queue === QUEUE.backup) {
          announceMirrorOutage(job);
          await verifyAfterBackup(job, result);
        }
        // A backup's; the archive verification and the drill send their own alerts (verify-processor.ts).
        if (queue === QUEUE.verify && (result as { valid?: unknown }).valid === false && job.name === 'verify') {
          const r = result as { backupId?: number; message?: string };
          alerts.send({
            event: 'verify.invalid',
            summary: `backup ${r.backupId} failed verification`,
            reason: r.message ?? 'invalid',
            queue,
            jobId: String(job.id),
            backupId: r.backupId,
          });
        }
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

    /** Leaves the heartbeat set, lets alerts in flight finish (bounded), closes the queue. */
    async stop(): Promise<void> {
      await heartbeat?.stop();
      await alerts.flush(Math.min(config.shutdownTimeout, 5_000));
      await verifyQueue.close();
    },
  };
}

export type WorkerOps = ReturnType<typeof createWorkerOps>;
