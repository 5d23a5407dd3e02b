import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Catalog } from '../shared/catalog/catalog.js';
import type { Config } from '../shared/runtime/config.js';
import { isTransient, messageOf } from '../shared/domain/errors.js';
import { FileLockUnavailable, allOf, tryFileLock } from '../shared/locking/file-lock.js';
import type { DatabaseLock, LockGuard } from '../shared/locking/lock.js';
import type { Logger } from '../shared/observability/logger.js';

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
}

export function jobLogger(ctx: WorkerContext, job: Job): Logger {
  return ctx.log.child({ queue: job.queueName, jobId: job.id, attempt: job.attemptsMade + 1 });
}

/**
 * Runs `fn` holding the database lock: the Redis lock, then the local file lock in BACKUP_DIR
 * (which the CLI holds when it works with Redis down). When another holder has either, this job
 * goes back to the delayed set for a moment (with jitter, so waiters do not stampede) without
 * spending an attempt.
 */
export async function withDatabaseLock<T>(
  ctx: WorkerContext,
  job: Job,
  token: string | undefined,
  fn: (lock: LockGuard) => Promise<T>,
): Promise<T> {
  if (ctx.stopping) {
    await job.moveToDelayed(Date.now() + ctx.config.lockRetryDelay, token);
    throw new DelayedError();
  }
  const holder = `${ctx.workerId}:${job.queueName}:${job.id}`;
  const lock = await ctx.lock.tryAcquire(holder, { fence: 'later' });
  let local: Awaited<ReturnType<typeof tryFileLock>> | undefined;
  try {
    local = lock ? await tryFileLock(ctx.config, holder) : undefined;
  } catch (err) {
    if (!(err instanceof FileLockUnavailable)) {
      await lock?.release();
      throw err;
    }
    // Nobody can hold a lock that cannot be created; the job meets the unwritable directory
    // itself and fails with the reason.
    jobLogger(ctx, job).warn({ err: err.message }, 'local database lock unavailable; holding the Redis lock only');
  }
  if (lock && !local) {
    try {
      lock.takeFence();
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }
  if (!lock || !local?.lock) {
    await lock?.release();
    const delay = ctx.config.lockRetryDelay * (0.5 + Math.random());
    jobLogger(ctx, job).debug(
      { delay: Math.round(delay), holder: local && !local.lock ? local.holder : undefined },
      'database lock is taken; waiting',
    );
    await job.moveToDelayed(Date.now() + delay, token);
    throw new DelayedError();
  }
  try {
    // Only now, holding both: a grant that found the file lock taken must not fence off its holder.
    lock.takeFence();
    return await fn(allOf(lock, local.lock));
  } finally {
    await local.lock.release();
    await lock.release();
  }
}

/** Permanent failures become UnrecoverableError so BullMQ does not spend retries on them. */
export function classify(err: unknown): Error {
  if (err instanceof DelayedError || err instanceof UnrecoverableError) return err;
  // The code goes along, so what watches jobs can tell one permanent failure from another.
  if (!isTransient(err)) return Object.assign(new UnrecoverableError(messageOf(err)), { code: (err as { code?: unknown }).code });
  return err instanceof Error ? err : new Error(messageOf(err));
}
