import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import { messageOf } from '../domain/errors.js';
import type { ArchiverDeps, ArchiverOptions } from './archiver-types.js';

/**
 * Taking a generation's snapshot in the background while syncs go on, and recording it once the
 * archive provably reaches past it: at the first sync point that began after the backup completed
 * (docs/wal-archiving.md, "The snapshot, and why replaying onto it is exact").
 */
export class GenerationSnapshot {
  #running: Promise<void> | undefined;
  #syncWaiters: { since: number; resolve: (at: string) => void }[] = [];
  /** Aborted when the archiver stops: a snapshot still being waited for is given up. */
  #stopping = new AbortController();

  constructor(
    private readonly deps: Pick<ArchiverDeps, 'catalog' | 'log'>,
    private readonly opts: Pick<ArchiverOptions, 'takeSnapshot'>,
    /** The generation the archiver writes now, if any. */
    private readonly current: () => WalGenerationRow | undefined,
  ) {}

  /** Whether a snapshot is being taken. */
  get taking(): boolean {
    return this.#running !== undefined;
  }

  /** Takes the generation's snapshot in the background, unless one is being taken. */
  take(generation: WalGenerationRow): void {
    if (this.#running) return;
    this.#running = (async () => {
      try {
        const { backupId } = await this.opts.takeSnapshot(generation, this.#stopping.signal);
        // The snapshot counts once the archive reaches past it: replaying stored frames onto a copy
        // newer than the last of them would put older versions of some pages back. Every commit
        // before the next sync point (which begins after the backup completed) is then stored.
        const coveredAt = await this.nextStoredSyncPoint();
        if (this.current()?.id !== generation.id) return; // it ended meanwhile: another snapshot for the next
        this.deps.catalog.wal.setSnapshot(generation.id, backupId, coveredAt);
        this.deps.log.info({ generation: generation.id, backupId }, 'WAL archive: snapshot of the generation taken');
      } catch (err) {
        if (this.#stopping.signal.aborted) return;
        this.deps.log.warn({ generation: generation.id, reason: messageOf(err) }, 'WAL archive: the snapshot failed; trying again');
      } finally {
        this.#running = undefined;
      }
    })();
  }

  /** Resolves with the time of the next sync point once what it read is stored. */
  private nextStoredSyncPoint(): Promise<string> {
    const since = Date.now();
    return new Promise((resolve) => this.#syncWaiters.push({ since, resolve }));
  }

  /**
   * A sync point that began at `storedThrough` has stored what it read, the last of it read at
   * `lastReadAt` (if it read anything).
   */
  syncPointStored(storedThrough: number, lastReadAt: Date | undefined): void {
    // A snapshot is covered by a sync point that began after it completed, from the moment its
    // last segment was read: a target before that would replay frames older than the snapshot's
    // pages over them, a state that never existed.
    const covered = new Date(Math.max(storedThrough, lastReadAt?.getTime() ?? 0)).toISOString();
    const due = this.#syncWaiters.filter((w) => w.since <= storedThrough);
    this.#syncWaiters = this.#syncWaiters.filter((w) => !due.includes(w));
    for (const { resolve } of due) resolve(covered);
  }

  /**
   * The archiver stops: a snapshot still waiting for a sync point is given up (not recorded: the
   * next archiver asks again). Call it once the archiver no longer has a current generation.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const { resolve } of this.#syncWaiters.splice(0)) resolve('');
    await this.#running?.catch(() => undefined);
  }
}
