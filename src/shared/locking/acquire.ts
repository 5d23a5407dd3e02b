import type { Catalog } from '../catalog/catalog.js';
import { AppError, LockHeldError } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import { FileLockUnavailable, allOf, tryFileLock } from './file-lock.js';
import type { DatabaseLock, LockGuard } from './lock.js';

export interface LockRequest {
  config: Config;
  catalog: Catalog;
  /** The Redis half of the lock; undefined when Redis is out of reach (a CLI run with Redis down). */
  redisLock: DatabaseLock | undefined;
  /** Who asks, as lock tokens and the holder file show it. */
  holder: string;
  /** Tells the operator when the lock held is less than the whole (one half cannot be had). */
  note: (message: string) => void;
}

export interface HeldDatabaseLock {
  guard: LockGuard;
  /** Which halves are held: both, Redis alone (the lock directory cannot be created), or the file alone (no Redis). */
  via: 'redis+file' | 'redis' | 'file';
  release(): Promise<void>;
}

/** What a caller does when another holder has the lock: wait somehow, or give up; it never returns. */
export type LockWaitPolicy = (holder: string | null) => Promise<never>;

/** For a person or a script at a shell: another holder is an answer at once, never a wait that could hang. */
export const failWhenTaken: LockWaitPolicy = async (holder) => {
  throw new LockHeldError(holder);
};

/**
 * The database lock, or who holds it: the Redis lock when Redis is reachable (so every worker
 * sees it), then the local file lock in BACKUP_DIR (which a CLI run with Redis down holds alone),
 * then the fencing value, taken only once both are held: a grant that found the file lock taken
 * must not fence off its holder. A lock directory that cannot be created at all is held by no
 * one, so Redis alone guards the database then; without Redis that leaves nothing to hold.
 */
export async function tryAcquireDatabaseLock(req: LockRequest): Promise<HeldDatabaseLock | { guard: null; holder: string | null }> {
  const { config, catalog, redisLock, holder, note } = req;
  const held = redisLock ? await redisLock.tryAcquire(holder, { fence: 'later' }) : undefined;
  if (redisLock && !held) return { guard: null, holder: await redisLock.holder() };
  let local: Awaited<ReturnType<typeof tryFileLock>>;
  try {
    // Without Redis, the local lock takes a fencing value of its own as it is granted.
    local = await tryFileLock(config, holder, held ? undefined : catalog);
  } catch (err) {
    if (!(err instanceof FileLockUnavailable)) {
      await held?.release();
      throw err;
    }
    if (!held)
      throw new AppError('lock_unavailable', `${err.message}; with Redis down there is no other lock to hold`, true, { cause: err });
    note(`${err.message}; holding the Redis lock only`);
    return fenced(held, 'redis', () => held.release());
  }
  if (!local.lock) {
    await held?.release();
    return { guard: null, holder: local.holder };
  }
  const fileLock = local.lock;
  const release = async () => {
    await fileLock.release();
    await held?.release();
  };
  if (!held) {
    note('Redis is not reachable: holding the local lock only');
    return { guard: fileLock, via: 'file', release };
  }
  return fenced(held, 'redis+file', release, allOf(held, fileLock));
}

async function fenced(
  held: { takeFence(): number } & LockGuard,
  via: HeldDatabaseLock['via'],
  release: () => Promise<void>,
  guard: LockGuard = held,
): Promise<HeldDatabaseLock> {
  try {
    held.takeFence();
  } catch (err) {
    await release();
    throw err;
  }
  return { guard, via, release };
}

/** Runs `fn` holding the whole database lock; when another holder has it, `whenTaken` decides. */
export async function withDatabaseLock<T>(
  req: LockRequest,
  whenTaken: LockWaitPolicy,
  fn: (lock: HeldDatabaseLock) => Promise<T>,
): Promise<T> {
  const attempt = await tryAcquireDatabaseLock(req);
  if (!attempt.guard) return whenTaken(attempt.holder);
  try {
    return await fn(attempt);
  } finally {
    await attempt.release();
  }
}
