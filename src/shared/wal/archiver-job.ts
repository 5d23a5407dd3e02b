import type { Queue } from 'bullmq';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import { WAL_ARCHIVER_JOB_ID, type WalJobData } from '../jobs/job-data.js';

/**
 * Puts the archiver's job in the queue unless it is there (waiting, running or delayed). Every
 * worker calls this at start and then now and again, and the API when archiving is turned on:
 * after Redis restarted empty, the next call brings the archiver back.
 */
export async function ensureArchiverJob(queue: Queue<WalJobData>): Promise<void> {
  const job = await queue.getJob(WAL_ARCHIVER_JOB_ID);
  if (job) {
    const state = await job.getState();
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
    await job.remove().catch(() => undefined);
  }
  await queue.add(
    'archive',
    {},
    {
      jobId: WAL_ARCHIVER_JOB_ID,
      // It should run as long as archiving is on: a failure is retried after a pause, for good.
      attempts: 1_000_000,
      backoff: { type: 'fixed', delay: 5_000 },
      removeOnComplete: true,
      removeOnFail: true,
    },
  );
}

/**
 * The archiver job's BullMQ lock duration: a little under JOB_LOCK_DURATION, so that a dead
 * worker's archiver is taken over within JOB_LOCK_DURATION + one interval, counting the stalled
 * check and the start of the next archiver.
 */
export function archiverLockDuration(config: Pick<Config, 'jobLockDuration' | 'walArchiveInterval'>): number {
  return Math.max(1_000, config.jobLockDuration - 2 * config.walArchiveInterval);
}

/** The lease: half the job lock (at least three intervals), so that whoever takes the job over finds it free. */
export function archiverLeaseMs(config: Pick<Config, 'jobLockDuration' | 'walArchiveInterval'>, intervalMs: number): number {
  return Math.max(3 * intervalMs, archiverLockDuration(config) / 2);
}

/** Who runs the archiver: a lease in the catalog, so two never run at once whatever Redis says. */
interface ArchiverLease {
  owner: string;
  expiresAt: number;
}

const LEASE_KEY = 'wal-archiver-lease';

/**
 * Takes or renews the archiver's lease for `owner` until `ms` from now; false while another
 * owner's lease runs. BullMQ's job lock normally keeps a second archiver from starting; this
 * keeps it so when Redis lost the job (restarted empty) and the job was added again.
 */
export function holdArchiverLease(catalog: Catalog, owner: string, ms: number): boolean {
  const now = Date.now();
  const lease = catalog.updateSetting<ArchiverLease | null>(LEASE_KEY, (stored) => {
    const current = stored as ArchiverLease | null | undefined;
    if (current && current.owner !== owner && current.expiresAt > now) return current;
    return { owner, expiresAt: now + ms };
  });
  return lease?.owner === owner;
}

export function releaseArchiverLease(catalog: Catalog, owner: string): void {
  catalog.updateSetting<ArchiverLease | null>(LEASE_KEY, (stored) => {
    const current = stored as ArchiverLease | null | undefined;
    return current?.owner === owner ? null : (current ?? null);
  });
}

/** Holds the archiver's lease for one owner: `hold()` takes or renews it now, a timer renews it in between. */
export interface ArchiverLeaseKeeper {
  /** Takes or renews the lease now; false while another owner's lease runs. */
  hold(): boolean;
  /** What the last attempt (`hold()` or the timer) found. */
  readonly held: boolean;
  /** Stops the timer (the lease itself is let go with `releaseArchiverLease`). */
  stop(): void;
}

/**
 * Renews the lease every third of its length on a timer of its own, whatever the archiver's loop
 * is doing: a slow step (a hung disk, a checkpoint waiting) never outlasts it while the process
 * lives, as BullMQ renews the job's lock. It only renews a lease this owner holds, or takes one
 * that ran out; an archiver whose renewal fails sees it at its next `hold()` and lets go of the
 * database. `onLost` is called when a renewal finds another owner's lease.
 */
export function keepArchiverLease(catalog: Catalog, owner: string, ms: () => number, onLost?: () => void): ArchiverLeaseKeeper {
  let held = false;
  let timer: NodeJS.Timeout | undefined;
  const renew = (): boolean => {
    const was = held;
    held = holdArchiverLease(catalog, owner, ms());
    if (was && !held) onLost?.();
    return held;
  };
  const schedule = () => {
    timer = setTimeout(
      () => {
        // A catalog that is busy for a moment: the next tick, or the loop's own `hold()`, tries again.
        try {
          renew();
        } catch {
          /* kept as it was */
        }
        schedule();
      },
      Math.max(100, Math.floor(ms() / 3)),
    );
    timer.unref();
  };
  schedule();
  return {
    hold: renew,
    get held() {
      return held;
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
