import fs from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import { LockLostError, codeOf, messageOf } from '../domain/errors.js';
import { assertFence, type LockGuard } from './lock.js';

/**
 * The database lock's local half: a lock directory in BACKUP_DIR (proper-lockfile: atomic mkdir,
 * kept fresh by touching it, taken over once stale), so that the CLI can hold the lock while
 * Redis is down. Workers take it too, under the Redis lock, so a worker that comes up while the
 * CLI works waits for it.
 */
const target = (config: Config) => path.join(config.backupDir, '.database');
const holderFile = (config: Config) => path.join(config.backupDir, '.database.holder');

/** The lock directory cannot be created at all (BACKUP_DIR read-only, not a directory): no one can hold it. */
export class FileLockUnavailable extends Error {
  override name = 'FileLockUnavailable';
}

export class FileLock implements LockGuard {
  private readonly lostController = new AbortController();
  readonly signal = this.lostController.signal;
  private compromisedBy: Error | undefined;

  constructor(
    private readonly releaseFn: () => Promise<void>,
    private readonly catalog: Catalog | undefined,
    /** Set when this lock alone guards the database (no Redis): its own grant in the fence. */
    readonly fence: number | undefined,
  ) {}

  get compromised(): Error | undefined {
    return this.compromisedBy;
  }

  /** proper-lockfile found the lock directory gone or taken over (this holder stalled past `stale`). */
  set compromised(err: Error | undefined) {
    this.compromisedBy = err;
    if (err && !this.signal.aborted)
      this.lostController.abort(new LockLostError(`the local database lock was lost: ${err.message}`, { cause: err }));
  }

  async assertHeld(): Promise<void> {
    if (this.compromisedBy) {
      throw new LockLostError(`the local database lock was lost: ${this.compromisedBy.message}`, { cause: this.compromisedBy });
    }
    if (this.catalog) assertFence(this.catalog, this.fence);
  }

  async release(): Promise<void> {
    await this.releaseFn().catch(() => undefined);
  }
}

/**
 * The local lock, or null with who holds it. `fenceFrom` gives the grant a fencing value of its
 * own (for a holder without Redis); with Redis, the Redis grant carries the fence.
 */
export async function tryFileLock(
  config: Config,
  holder: string,
  fenceFrom?: Catalog,
): Promise<{ lock: FileLock } | { lock: null; holder: string }> {
  await fs.mkdir(config.backupDir, { recursive: true, mode: 0o700 }).catch(() => undefined);
  const stale = Math.max(2_000, config.lockTtl);
  // The compromise callback can fire before the lock object exists; it finds it here.
  const state: { lock?: FileLock } = {};
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target(config), {
      realpath: false,
      stale,
      update: Math.floor(stale / 3),
      retries: 0,
      onCompromised: (err) => {
        if (state.lock) state.lock.compromised = err;
      },
    });
  } catch (err) {
    // Anything but "held by someone" means the directory cannot take a lock at all (read-only,
    // not a directory, gone): no one else can hold it either.
    if (codeOf(err) !== 'ELOCKED') {
      throw new FileLockUnavailable(`cannot create the lock in ${config.backupDir}: ${messageOf(err)}`, { cause: err });
    }
    const who = await fs.readFile(holderFile(config), 'utf8').catch(() => 'another process');
    return { lock: null, holder: who.trim() || 'another process' };
  }
  await fs.writeFile(holderFile(config), holder, { mode: 0o600 }).catch(() => undefined);
  state.lock = new FileLock(release, fenceFrom, fenceFrom?.nextFence());
  return { lock: state.lock };
}

/**
 * A guard that holds while every one of `guards` holds: lost as soon as any is, fenced by the
 * one that took the fencing value.
 */
export function allOf(...guards: LockGuard[]): LockGuard {
  const signals = guards.flatMap((g) => (g.signal ? [g.signal] : []));
  return {
    get fence() {
      return guards.find((g) => g.fence !== undefined)?.fence;
    },
    signal: signals.length ? AbortSignal.any(signals) : undefined,
    async assertHeld() {
      for (const g of guards) await g.assertHeld();
    },
  };
}
