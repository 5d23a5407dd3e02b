import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Catalog } from '../shared/catalog/catalog.js';
import type { Config } from '../shared/runtime/config.js';
import { codeOf, isTransient, messageOf } from '../shared/domain/errors.js';
import type { LockWaitPolicy } from '../shared/locking/acquire.js';
import type { DatabaseLock } from '../shared/locking/lock.js';
import type { Logger } from '../shared/runtime/logger.js';
import type { AlertSender } from '../shared/observability/alerts.js';
import type { LockedRun, OperationDeps, Run } from '../shared/operations/run.js';
import { cancelledError, isCancelled, type CancelGates } from '../shared/jobs/cancel.js';

/** What every processor gets from the worker process. */
export interface WorkerContext {
  config: Config;
  catalog: Catalog;
  redis: Redis;
  lock: DatabaseLock;
  log: Logger;
  /** Identifies this process in lock tokens and leases. */
  workerId: string;
  /** Set once shutdown begins: a job fetched in BullMQ's closing window is handed back unrun. */
  stopping: boolean;
  /** Alerts that are not a job's failure (a gap in the WAL archive); set once the worker's ops exist. */
  alerts?: AlertSender;
  /**
   * The cancel gate of every job running in this process (`ops.wrap` opens and closes them); made
   * by the first job when the context was built without it.
   */
  gates?: CancelGates;
}

export function jobLogger(ctx: WorkerContext, job: Job): Logger {
  return ctx.log.child({ queue: job.queueName, jobId: job.id, attempt: job.attemptsMade + 1 });
}

/** The operations' view of this worker, for one job. */
export function operationDeps(ctx: WorkerContext, job: Job): OperationDeps {
  return { config: ctx.config, catalog: ctx.catalog, log: jobLogger(ctx, job), redisLock: ctx.lock };
}

/** A job as an operation's run: progress goes to the job, notes to its log, a cancel to the operation. */
export function jobRun(ctx: WorkerContext, job: Job, signal: AbortSignal | undefined, runId = String(job.id)): Run {
  const log = jobLogger(ctx, job);
  const gate = ctx.gates?.get(job.queueName, String(job.id));
  return { runId, signal, gate, report: { progress: (p) => job.updateProgress(p), note: (message) => log.warn(message) } };
}

/** Hands the job back to the delayed set without spending an attempt. */
async function handBack(job: Job, token: string | undefined, delay: number): Promise<never> {
  await job.moveToDelayed(Date.now() + delay, token);
  throw new DelayedError();
}

/**
 * A job that needs the database lock. When another holder has it (a worker, the reaper, a CLI
 * run), the job goes back to the delayed set for a moment, with jitter so waiters do not
 * stampede. A job fetched once shutdown began is handed back before it takes anything.
 */
export async function lockedJobRun(
  ctx: WorkerContext,
  job: Job,
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<LockedRun> {
  if (ctx.stopping) await handBack(job, token, ctx.config.lockRetryDelay);
  const whenTaken: LockWaitPolicy = async (holder) => {
    const delay = ctx.config.lockRetryDelay * (0.5 + Math.random());
    jobLogger(ctx, job).debug({ delay: Math.round(delay), holder }, 'database lock is taken; waiting');
    return handBack(job, token, delay);
  };
  return { ...jobRun(ctx, job, signal), holder: `${ctx.workerId}:${job.queueName}:${job.id}`, whenTaken };
}

/**
 * Permanent failures become UnrecoverableError so BullMQ does not spend retries on them; so does
 * a cancelled job, whatever its operation threw on the way out.
 */
export function classify(err: unknown, signal?: AbortSignal): Error {
  if (err instanceof DelayedError || err instanceof UnrecoverableError) return err;
  if (signal?.aborted && !isCancelled(err)) err = cancelledError(signal);
  // The code goes along, so what watches jobs can tell one permanent failure from another. The
  // error is the same failure retyped for BullMQ, with the same message: it takes no `cause`,
  // which the log would print as the message a second time.
  if (!isTransient(err)) return Object.assign(new UnrecoverableError(messageOf(err)), { code: codeOf(err) });
  return err instanceof Error ? err : new Error(messageOf(err));
}
