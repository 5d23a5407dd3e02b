import { setTimeout as sleep } from 'node:timers/promises';
import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import { messageOf, NotWalMode } from '../domain/errors.js';
import { noProgress, type ArchiverDeps, type ArchiverOptions, type ArchiverProgress } from './archiver-types.js';
import { Checkpoints } from './checkpoint.js';
import { storedEnd, walHoldsStored } from './continuity.js';
import { Gap, GAP_PREFIX } from './gap.js';
import { GenerationRetention } from './generation-retention.js';
import { GenerationSnapshot } from './generation-snapshot.js';
import { restoredSince, startingPoint, whyBegin } from './generation-start.js';
import { ReadMark } from './read-mark.js';
import { WalShipper } from './wal-shipper.js';

// The archiver's parts, importable from here as before.
export type { ArchiverDeps, ArchiverOptions, ArchiverProgress } from './archiver-types.js';
export { CHECKPOINT_FRAMES, CHECKPOINT_MS, TRUNCATE_BYTES } from './checkpoint.js';
export { positionAfter } from './continuity.js';
export { GAP_PREFIX } from './gap.js';
export { ROLLOVER_MAX_MS } from './generation-retention.js';

/** Syncs in a row that find the write lock taken before the read mark is let go anyway. */
const BUSY_SYNCS_BEFORE_RELEASE = 2;

/**
 * Ships every committed transaction of the live database's WAL to the archive, about once an
 * interval, as segments of a generation that replays onto its snapshot (see docs/wal-archiving.md).
 *
 * Continuity rests on one rule: SQLite can reset the WAL (start again at its top with new salts)
 * only while no reader holds a read mark in it. The archiver holds a read transaction all the time,
 * and lets go of it only at a *sync point*: with the application's writers held off for a moment
 * (BEGIN IMMEDIATE on a connection of its own), it ships what is left, drops and retakes its read
 * mark (which lets the application's checkpoints go as far as what is stored), and then releases
 * the writers. From a sync point on, at most one reset can happen before the archiver looks again,
 * and that reset starts the WAL afresh with every later frame in it: continuity holds. When the
 * read mark had to be let go without holding the writers off (a checkpoint of the application's
 * waited for it), or the archiver was not running, a reset cannot be proven harmless: a new
 * generation begins, and the gap is reported.
 *
 * This class runs the loop and keeps the generation; its parts: the connections and the sync point
 * (read-mark.ts), the checks of each look (file-identity.ts, continuity.ts), reading and storing
 * (wal-shipper.ts, wal-file.ts), how a generation begins (generation-start.ts), its snapshot
 * (generation-snapshot.ts), checkpoints (checkpoint.ts) and retention (generation-retention.ts).
 */
export class WalArchiver {
  /** The connections, the read mark and the files they hold; undefined while closed. */
  #mark: ReadMark | undefined;
  #generation: WalGenerationRow | undefined;
  #busySyncs = 0;
  /** When the last sync point began: every commit before it is stored. */
  #storedThrough = Date.now();
  /** Set while a restore paused archiving: the next generation says why it began. */
  #afterRestore = false;
  #progress: ArchiverProgress = noProgress();
  #checkpoints = new Checkpoints();
  /** The archive's position in the `-wal` file (`pos`), and reading and storing from it. */
  #shipper: WalShipper;
  #snapshots: GenerationSnapshot;
  #retention: GenerationRetention;
  /** A gap was found and the generation ended: the next round begins the next one, for this reason. */
  #nextGeneration: { reason: string; isGap: boolean } | undefined;

  constructor(
    private readonly deps: ArchiverDeps,
    private readonly opts: ArchiverOptions,
  ) {
    this.#shipper = new WalShipper(deps, this.#progress, this.#checkpoints);
    this.#snapshots = new GenerationSnapshot(deps, opts, () => this.#generation);
    this.#retention = new GenerationRetention(deps, opts);
  }

  private get walPath(): string {
    return `${this.deps.config.databasePath}-wal`;
  }

  get progress(): ArchiverProgress {
    return { ...this.#progress };
  }

  /** Runs until the signal is aborted or `shouldStop` says so. */
  async run(): Promise<void> {
    const { signal } = this.opts;
    try {
      // A restore that began and ended between two looks (shorter than an interval) is caught by its row.
      let knownRestore = this.deps.catalog.lastRestoredAt();
      while (!signal.aborted && !this.opts.shouldStop?.()) {
        const restoredAt = this.deps.catalog.lastRestoredAt();
        if (this.deps.catalog.inProgressRestores().length || restoredAt !== knownRestore) {
          knownRestore = restoredAt;
          await this.pauseForRestore();
          continue;
        }
        if (this.opts.lease && !this.opts.lease()) {
          if (this.#mark) this.deps.log.warn('WAL archiving: another archiver holds the lease; waiting');
          await this.close();
          await sleep(this.opts.intervalMs(), undefined, { signal }).catch(() => undefined);
          continue;
        }
        try {
          if (!this.#mark) await this.start();
          await this.sync();
        } catch (err) {
          if (err instanceof NotWalMode) throw err;
          if (signal.aborted) break;
          if (err instanceof Gap) this.endAtGap(err.message);
          else this.deps.log.warn({ reason: messageOf(err) }, 'WAL archiving: a sync failed; trying again');
          // Fresh connections next round: the database file may have been replaced under them.
          await this.close();
        }
        await this.report();
        await sleep(this.opts.intervalMs(), undefined, { signal }).catch(() => undefined);
      }
    } finally {
      await this.close();
      // A snapshot still waiting for a sync point is not recorded: the next archiver asks again.
      this.#generation = undefined;
      await this.#snapshots.stop();
    }
  }

  /** A restore rewrites the database: the generation ends, and a new one begins on the restored state. */
  private async pauseForRestore(): Promise<void> {
    await this.close();
    if (this.#generation) {
      this.deps.catalog.wal.endGeneration(this.#generation.id, 'a restore ran', this.storedThroughIso());
      this.#generation = undefined;
    }
    this.#shipper.pos = undefined;
    // The restored database is the next generation's starting point, whatever gap came before it.
    this.#nextGeneration = undefined;
    this.#afterRestore = true;
    await sleep(this.opts.intervalMs(), undefined, { signal: this.opts.signal }).catch(() => undefined);
  }

  private async openConnections(): Promise<void> {
    this.#mark = await ReadMark.open(this.deps.config.databasePath, (at) => {
      this.#storedThrough = at;
    });
  }

  /**
   * Continuity cannot be proven: the generation ends here, before the archive claims any moment
   * after the gap, and the next round begins the next generation (with its alert) from a fresh
   * look at the database. Until it has its snapshot, the window ends at this generation's last segment.
   */
  private endAtGap(reason: string): void {
    const generation = this.#generation;
    // Every commit before the last sync point was stored: the window keeps reaching it.
    if (generation) this.deps.catalog.wal.endGeneration(generation.id, `${GAP_PREFIX}${reason}`, this.storedThroughIso());
    this.#generation = undefined;
    this.#shipper.pos = undefined;
    this.#nextGeneration = { reason, isGap: true };
    this.#progress.lastGap = { at: new Date().toISOString(), reason };
    this.deps.log.warn({ generation: generation?.id ?? null, reason }, 'WAL archive: continuity lost; the generation ends here');
  }

  /** The last sync point of this generation (every commit before it is stored), if it had one. */
  private storedThroughIso(): string | undefined {
    const generation = this.#generation;
    if (!generation || this.#storedThrough < Date.parse(generation.started_at)) return undefined;
    return new Date(this.#storedThrough).toISOString();
  }

  /** Opens the connections and continues the open generation where it stopped, or begins one. */
  private async start(): Promise<void> {
    await this.openConnections();
    const next = this.#nextGeneration;
    if (next) {
      await this.newGeneration(next.reason, next.isGap);
      this.#nextGeneration = undefined;
      return;
    }
    const open = this.deps.catalog.wal.openGeneration();
    // A restore while no archiver ran (the CLI with the service down) replaced the database.
    if (restoredSince(this.deps.catalog, open)) {
      this.#afterRestore = true;
    } else if (open && (await this.resume(open))) return;
    if (this.#afterRestore) {
      this.#afterRestore = false;
      await this.newGeneration('a restore ran', true);
      return;
    }
    const { reason, isGap } = whyBegin(open, this.deps.catalog.wal.generations().at(-1));
    await this.newGeneration(reason, isGap);
  }

  /** Picks up an open generation when the WAL still holds exactly what was stored of it. */
  private async resume(generation: WalGenerationRow): Promise<boolean> {
    const mark = this.#mark!;
    const expected = storedEnd(generation, this.deps.catalog.wal.lastSegment(generation.id));
    const ok = await mark.atSyncPointSoon(() => walHoldsStored(this.walPath, expected), this.opts.signal);
    if (!ok) return false;
    await mark.files.noteWal();
    this.#generation = generation;
    this.#shipper.pos = expected;
    mark.safe = true;
    if (generation.snapshot_backup_id === null) this.#snapshots.take(generation);
    this.deps.log.info({ generation: generation.id, position: expected?.offset ?? null }, 'WAL archiving resumed its generation');
    return true;
  }

  /**
   * Begins a generation at the WAL's committed end (taken at a sync point, so that nothing is
   * between it and what the snapshot will hold), then takes its snapshot in the background while
   * syncs go on: replaying the segments from this point onto a snapshot taken after it gives the
   * database as of each later commit (a frame holds a whole page; replaying one already in the
   * snapshot writes what the snapshot has or a later frame overwrites).
   */
  private async newGeneration(reason: string, isGap: boolean): Promise<void> {
    if (!this.#mark) await this.openConnections();
    const mark = this.#mark!;
    const previous = this.#generation;
    const { start, pageSize } = await startingPoint(mark, this.walPath, this.opts.signal);
    const generation = this.deps.catalog.wal.beginGeneration(reason, pageSize, start ?? null);
    this.#generation = generation;
    this.#shipper.pos = start;
    mark.safe = true;
    this.#checkpoints.newGeneration();
    if (isGap) {
      this.#progress.lastGap = { at: new Date().toISOString(), reason };
      this.deps.log.warn({ generation: generation.id, previous: previous?.id ?? null, reason }, 'WAL archive: new generation after a gap');
      this.opts.onGap?.(reason, generation);
    } else {
      this.deps.log.info({ generation: generation.id, reason }, 'WAL archive: new generation');
    }
    this.#snapshots.take(generation);
  }

  /** One interval's work: ship new commits, then a sync point (and a checkpoint when due). */
  private async sync(): Promise<void> {
    const generation = this.#generation;
    if (!generation) throw new Gap('archiving started');
    if (this.#retention.rolloverDue(generation)) {
      // Not a gap: a fresh snapshot now and then keeps a restore's replay short and lets old history go.
      await this.newGeneration(`rollover: generation ${generation.id} began ${generation.started_at}`, false);
      return;
    }
    if (this.#retention.pruneDue()) await this.#retention.prune();
    if (generation.snapshot_backup_id === null) {
      const fresh = this.deps.catalog.wal.generation(generation.id);
      if (fresh) this.#generation = fresh;
      if (fresh?.snapshot_backup_id === null && !this.#snapshots.taking) this.#snapshots.take(fresh);
    }
    const mark = this.#mark!;
    const shipper = this.#shipper;
    await shipper.shipNew(this.#generation!, mark);
    // Under the write lock only the reading: storing (compression, fsync, the catalog) waits
    // until the writers are free again, with the frames in hand.
    const finishCheckpoint = this.#checkpoints.resetDue;
    const point = await mark.atSyncPoint(async () => {
      // Everything up to the WAL's end must be in hand before the writers go on (a sync point
      // vouches for it): a backlog past READ_LIMIT is stored here, chunk by chunk, rare as it is.
      let pending = await shipper.readNew(this.#generation!, mark);
      while (pending && !pending.read.complete) {
        await shipper.store(this.#generation!, pending);
        pending = await shipper.readNew(this.#generation!, mark);
      }
      return pending;
    }, finishCheckpoint);
    if (point.held) {
      if (finishCheckpoint) this.#checkpoints.resetDue = false;
      if (point.value) await shipper.store(this.#generation!, point.value);
      this.#snapshots.syncPointStored(this.#storedThrough, point.value?.readAt);
      this.#busySyncs = 0;
      if (this.#checkpoints.due()) await this.#checkpoints.run(mark, this.#progress.walBytes, this.deps.log);
    } else if (++this.#busySyncs >= BUSY_SYNCS_BEFORE_RELEASE) {
      // Someone has held the write lock across syncs: perhaps a checkpoint of the application's
      // that waits for readers (TRUNCATE, RESTART). Let it through rather than stall its writers.
      await mark.letGoBriefly();
      this.#busySyncs = 0;
    }
    this.#progress.lastSyncAt = new Date().toISOString();
  }

  private async report(): Promise<void> {
    const p = this.#progress;
    p.generation = this.#generation?.id ?? null;
    p.position = this.#shipper.pos?.offset ?? null;
    p.lagMs = this.#generation ? Date.now() - this.#storedThrough : 0;
    await Promise.resolve(this.opts.onProgress?.(this.progress)).catch(() => undefined);
  }

  /** Lets go of the read mark and closes the connections. */
  async close(): Promise<void> {
    const mark = this.#mark;
    this.#mark = undefined;
    await mark?.close();
  }
}
