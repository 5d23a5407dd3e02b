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
