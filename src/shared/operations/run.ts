import type { Catalog } from '../catalog/catalog.js';
import { withDatabaseLock, type HeldDatabaseLock, type LockWaitPolicy } from '../locking/acquire.js';
import type { DatabaseLock } from '../locking/lock.js';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';
import { removeAbandonedBackupTemps } from '../runtime/files.js';
import { throwIfCancelled, type CancelGate } from '../jobs/cancel.js';

/** What every operation works with, whoever calls it: a worker process or a CLI run. */
export interface OperationDeps {
  config: Config;
  catalog: Catalog;
  log: Logger;
  /** The Redis half of the database lock; undefined when Redis is out of reach (a CLI run with Redis down). */
  redisLock: DatabaseLock | undefined;
}

/** How an operation tells its caller how far it got: a job's progress, a progress bar, a log line. */
export interface Reporter {
  /** 0–100; each operation documents what its steps reach. */
  progress: (percent: number) => Promise<void> | void;
  /** Bytes packed so far out of the database's size, where the operation knows them. */
  bytes?: (done: number, total: number) => void;
  /** Something the operator should know that is not a failure (the lock held is less than the whole). */
  note: (message: string) => void;
}

/** What differs between one caller's run and another's. */
export interface Run {
  /** Names the run in catalog rows: a queue job's id, or a CLI run id (`cliRunId`). */
  runId: string;
  report: Reporter;
  /** Aborted when the run is cancelled (a job's cancel): the operation stops at its next safe point. */
  signal?: AbortSignal;
  /** Decides the run's cancel against its point of no return (a restore's copy), which refuses it once passed. */
  gate?: CancelGate;
}

/** A run that changes the database, and so needs its lock. */
export interface LockedRun extends Run {
  /** Who holds the lock, as lock tokens and the holder file show it. */
  holder: string;
  /** What to do when another holder has the lock: hand a job back to wait, or fail at once. */
  whenTaken: LockWaitPolicy;
}

/**
 * Runs `fn` holding the database lock, after removing temp files that a backup or restore which
 * died left behind: only a lock holder may, and a rerun finds its own dead attempt's files here.
 */
export function underDatabaseLock<T>(deps: OperationDeps, run: LockedRun, fn: (lock: HeldDatabaseLock) => Promise<T>): Promise<T> {
  throwIfCancelled(run.signal);
  const request = { config: deps.config, catalog: deps.catalog, redisLock: deps.redisLock, holder: run.holder, note: run.report.note };
  return withDatabaseLock(request, run.whenTaken, async (lock) => {
    await removeAbandonedBackupTemps(deps.config.backupDir);
    return fn(lock);
  });
}
