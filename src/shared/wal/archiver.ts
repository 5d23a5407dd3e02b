import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { AppError, messageOf } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Config } from '../runtime/config.js';
import { SqliteConnection } from '../sqlite/connection.js';
import { storeSegment } from './segment-store.js';
import { removeGenerations } from './bucket-packs.js';
import {
  frameSize,
  parseWalHeader,
  readAt,
  restartSalt,
  scanFrames,
  startOf,
  WAL_HEADER_SIZE,
  type WalHeader,
  type WalPosition,
} from './wal-format.js';

/** PASSIVE checkpoint once this many frames were shipped since the last one… */
export const CHECKPOINT_FRAMES = 1_000;
/** …or this long after the last one, when anything was shipped since. */
export const CHECKPOINT_MS = 60_000;
/** TRUNCATE only when the `-wal` file has grown past this (readers kept PASSIVE from resetting it). */
export const TRUNCATE_BYTES = 256 * 1024 * 1024;
/** At most this much of the WAL is read per sync; the rest follows in the next one. */
const READ_LIMIT = 64 * 1024 * 1024;
/** A generation runs at most this long (or half of WAL_RETENTION) before a fresh snapshot begins the next. */
export const ROLLOVER_MAX_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 10 * 60_000;
/** How long a sync waits to hold the application's writers off for a moment. */
const WRITE_LOCK_WAIT_MS = 100;
/** Syncs in a row that find the write lock taken before the read mark is let go anyway. */
const BUSY_SYNCS_BEFORE_RELEASE = 2;
/**
 * How long the read mark is let go then: longer than the 100 ms a waiting SQLite busy handler
 * sleeps between its tries, so that a checkpoint waiting for readers gets through rather than
 * keeping the application's writers waiting until its busy timeout.
 */
const RELEASE_MS = 150;

/** The archiver's state, for the board's progress and for `/health`. */
export interface ArchiverProgress {
  generation: number | null;
  /** Byte offset in the current `-wal` file up to which every commit is stored. */
  position: number | null;
  /** How long ago the last sync point was, at which every commit before it was stored. */
  lagMs: number;
  /** Bytes of committed frames read at the last look and not stored yet. */
  lagBytes: number;
  walBytes: number;
  segments: number;
  lastSyncAt: string | null;
  lastGap: { at: string; reason: string } | null;
}

export interface ArchiverDeps {
  config: Config;
  catalog: Catalog;
  log: Logger;
}

export interface ArchiverOptions {
  intervalMs: () => number;
  /** Aborted to stop (shutdown, handover, archiving turned off): the read mark goes at once. */
  signal: AbortSignal;
  /** Takes the snapshot a new generation replays onto (a backup through the usual pipeline, under the database lock). */
  takeSnapshot: (generation: WalGenerationRow, signal: AbortSignal) => Promise<{ backupId: number; completedAt: string }>;
  /** Called once per new generation that follows a gap: the `wal.gap` alert. */
  onGap?: (reason: string, generation: WalGenerationRow) => void;
  onProgress?: (progress: ArchiverProgress) => void | Promise<void>;
  /** Whether the service should stop archiving (turned off through the settings). */
  shouldStop?: () => boolean;
  /** How long the archive's history is kept (WAL_RETENTION): generations that ended longer ago go. */
  retentionMs?: () => number;
  /**
   * Takes or renews the right to archive (a lease); false while another archiver holds it. Checked
   * before every sync: an archiver that lost it lets go of the database and waits.
   */
  lease?: () => boolean;
}

/** The database is not in WAL mode: nothing is done to it. */
export class NotWalMode extends Error {
  override name = 'NotWalMode';
  constructor(
    readonly databasePath: string,
    readonly journalMode: string,
  ) {
    super(
      `WAL archiving needs the database in WAL mode; ${databasePath} is in ${journalMode} mode (run PRAGMA journal_mode=WAL in the application); nothing was done to it`,
    );
  }

  /** The same sentence as the API's 422. */
  asAppError(): AppError {
    return new AppError('not_wal_mode', this.message, true);
  }
}

class Gap extends Error {}

/** How the end reason of a generation ended at a gap begins. */
export const GAP_PREFIX = 'gap: ';

/** Committed frames read from the WAL and not stored yet. */
interface Pending {
  from: WalPosition;
  read: Scanned;
  readAt: Date;
}

/** What one read of the WAL found. */
interface Scanned {
  end: WalPosition;
  bytes: Buffer;
  commits: number;
  dbSizePages: number;
  fileSize: number;
  /** Whether the read reached the end of the file (else READ_LIMIT cut it: more follows). */
  complete: boolean;
}

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
 */
export class WalArchiver {
  #reader: SqliteConnection | undefined;
  #writer: SqliteConnection | undefined;
  #generation: WalGenerationRow | undefined;
  /** The next frame to ship; undefined when the WAL was empty at the last sync point. */
  #pos: WalPosition | undefined;
  /** Whether the read mark has been held since a sync point (so one reset is harmless). */
  #safe = false;
  #busySyncs = 0;
  #framesSinceCheckpoint = 0;
  #lastCheckpoint = Date.now();
  /** When the last sync point began: every commit before it is stored. */
  #storedThrough = Date.now();
  /** Set while a restore paused archiving: the next generation says why it began. */
  #afterRestore = false;
  /** A checkpoint copied the stored frames: the next sync point finishes it so that the WAL can start afresh. */
  #resetDue = false;
  #lastPrune = 0;
  #syncWaiters: { since: number; resolve: (at: string) => void }[] = [];
  /** Aborted when `run` ends: a snapshot still being waited for is given up. */
  #stopping = new AbortController();
  #progress: ArchiverProgress = {
    generation: null,
    position: null,
    lagMs: 0,
    lagBytes: 0,
    walBytes: 0,
    segments: 0,
    lastSyncAt: null,
    lastGap: null,
  };
  #snapshot: Promise<void> | undefined;
  /** Device and inode of the database file the connections opened, and of the `-wal` file last read. */
  #dbId: string | undefined;
  #walId: string | undefined;
  /** A gap was found and the generation ended: the next round begins the next one, for this reason. */
  #nextGeneration: { reason: string; isGap: boolean } | undefined;

  constructor(
    private readonly deps: ArchiverDeps,
    private readonly opts: ArchiverOptions,
  ) {}

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
          if (this.#reader) this.deps.log.warn('WAL archiving: another archiver holds the lease; waiting');
          await this.close();
          await sleep(this.opts.intervalMs(), undefined, { signal }).catch(() => undefined);
          continue;
        }
        try {
          if (!this.#reader) await this.start();
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
      this.#stopping.abort();
      for (const { resolve } of this.#syncWaiters.splice(0)) resolve('');
      await this.#snapshot?.catch(() => undefined);
    }
  }

  /** A restore rewrites the database: the generation ends, and a new one begins on the restored state. */
  private async pauseForRestore(): Promise<void> {
    await this.close();
    if (this.#generation) {
      this.deps.catalog.wal.endGeneration(this.#generation.id, 'a restore ran', this.storedThroughIso());
      this.#generation = undefined;
    }
    this.#pos = undefined;
    // The restored database is the next generation's starting point, whatever gap came before it.
    this.#nextGeneration = undefined;
    this.#afterRestore = true;
    await sleep(this.opts.intervalMs(), undefined, { signal: this.opts.signal }).catch(() => undefined);
  }

  private async openConnections(): Promise<void> {
    const file = this.deps.config.databasePath;
    const before = await fileId(file);
    // Both threads start at once: a worker taking over from a dead one should lose no time.
    const opened = await Promise.allSettled([
      SqliteConnection.open(file, { busyTimeoutMs: 5_000 }),
      SqliteConnection.open(file, { busyTimeoutMs: WRITE_LOCK_WAIT_MS }),
    ]);
    const [reader, writer] = opened;
    if (reader.status === 'rejected' || writer.status === 'rejected') {
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
      throw reader.status === 'rejected' ? reader.reason : (writer as PromiseRejectedResult).reason;
    }
    this.#reader = reader.value;
    this.#writer = writer.value;
    // Which file the connections hold: the path must name the same one at every look.
    if ((await fileId(file)) !== before) {
      await this.close();
      throw new Error(`${file} was replaced while the archiver opened it; trying again`);
    }
    this.#dbId = before;
    this.#walId = undefined;
    const [row] = await this.#reader.all<{ journal_mode: string }>('PRAGMA journal_mode');
    const mode = String(row?.journal_mode ?? 'unknown');
    if (mode.toLowerCase() !== 'wal') {
      await this.close();
      throw new NotWalMode(file, mode);
    }
    // The archiver checkpoints itself, when what it read is stored; its connections never do on their own.
    await this.#reader.run('PRAGMA wal_autocheckpoint = 0');
    await this.#writer.run('PRAGMA wal_autocheckpoint = 0');
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
    this.#pos = undefined;
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
    const restoredAt = this.deps.catalog.lastRestoredAt();
    if (open && restoredAt && restoredAt > (this.deps.catalog.wal.lastSegment(open.id)?.read_at ?? open.started_at)) {
      this.#afterRestore = true;
    } else if (open && (await this.resume(open))) return;
    if (this.#afterRestore) {
      this.#afterRestore = false;
      await this.newGeneration('a restore ran', true);
      return;
    }
    const last = this.deps.catalog.wal.generations().at(-1);
    // A generation ended at a gap by an archiver that stopped before it began the next one (its
    // process died, or the database was briefly not in WAL mode): the next one says why.
    const gapBefore = !open && last?.end_reason?.startsWith(GAP_PREFIX) ? last.end_reason.slice(GAP_PREFIX.length) : undefined;
    await this.newGeneration(
      open
        ? 'the archiver was not running, and the WAL it finds cannot prove that nothing was written and checkpointed meanwhile'
        : (gapBefore ?? (last ? 'archiving started again after it was stopped' : 'archiving started')),
      Boolean(open) || Boolean(last),
    );
  }

  /** Picks up an open generation when the WAL still holds exactly what was stored of it. */
  private async resume(generation: WalGenerationRow): Promise<boolean> {
    const last = this.deps.catalog.wal.lastSegment(generation.id);
    const expected: WalPosition | undefined = last
      ? positionAfter(last)
      : generation.start_offset !== null
        ? {
            salt1: generation.start_salt1!,
            salt2: generation.start_salt2!,
            pageSize: generation.page_size,
            bigEndian: generation.big_endian === 1,
            offset: generation.start_offset,
            checksum: [generation.start_checksum0!, generation.start_checksum1!],
          }
        : undefined;
    const ok = await this.atSyncPointSoon(async () => {
      // Only positive proof continues a generation: a WAL that began empty, is gone, or has other
      // salts may have been written, checkpointed and emptied while no archiver looked.
      if (!expected) return false;
      const header = await this.readHeader();
      if (!header || header.salt1 !== expected.salt1 || header.salt2 !== expected.salt2) return false;
      if ((await fileSize(this.walPath)) < expected.offset) return false;
      if (expected.offset === WAL_HEADER_SIZE) return true;
      // The frame before the position must end on the stored checksum: then the WAL still holds what was stored.
      const size = frameSize(expected.pageSize);
      const handle = await fs.open(this.walPath, 'r');
      try {
        const frame = await readAt(handle, expected.offset - size, 24);
        return (
          frame.length === 24 &&
          frame.readUInt32BE(8) === expected.salt1 &&
          frame.readUInt32BE(16) === expected.checksum[0] &&
          frame.readUInt32BE(20) === expected.checksum[1]
        );
      } finally {
        await handle.close();
      }
    });
    if (!ok) return false;
    this.#walId = await fileId(this.walPath);
    this.#generation = generation;
    this.#pos = expected;
    this.#safe = true;
    if (generation.snapshot_backup_id === null) this.snapshotInBackground(generation);
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
    if (!this.#reader) await this.openConnections();
    // Nothing to keep continuous: waiting for the write lock with a read mark held would only keep
    // an application's TRUNCATE or RESTART checkpoint (which holds that lock while it waits for
    // readers) waiting on the archiver.
    await this.#reader!.endRead();
    const previous = this.#generation;
    let start: WalPosition | undefined;
    let pageSize = 0;
    await this.atSyncPointSoon(async () => {
      const [row] = await this.#reader!.all<{ page_size: number }>('PRAGMA page_size');
      pageSize = Number(row?.page_size);
      const header = await this.readHeader();
      start = header ? (await this.committedEnd(startOf(header))).end : undefined;
      this.#walId = await fileId(this.walPath);
      return true;
    });
    const generation = this.deps.catalog.wal.beginGeneration(reason, pageSize, start ?? null);
    this.#generation = generation;
    this.#pos = start;
    this.#safe = true;
    this.#framesSinceCheckpoint = 0;
    if (isGap) {
      this.#progress.lastGap = { at: new Date().toISOString(), reason };
      this.deps.log.warn({ generation: generation.id, previous: previous?.id ?? null, reason }, 'WAL archive: new generation after a gap');
      this.opts.onGap?.(reason, generation);
    } else {
      this.deps.log.info({ generation: generation.id, reason }, 'WAL archive: new generation');
    }
    this.snapshotInBackground(generation);
  }

  private snapshotInBackground(generation: WalGenerationRow): void {
    if (this.#snapshot) return;
    this.#snapshot = (async () => {
      try {
        const { backupId } = await this.opts.takeSnapshot(generation, this.#stopping.signal);
        // The snapshot counts once the archive reaches past it: replaying stored frames onto a copy
        // newer than the last of them would put older versions of some pages back. Every commit
        // before the next sync point (which begins after the backup completed) is then stored.
        const coveredAt = await this.nextStoredSyncPoint();
        if (this.#generation?.id !== generation.id) return; // it ended meanwhile: another snapshot for the next
        this.deps.catalog.wal.setSnapshot(generation.id, backupId, coveredAt);
        this.deps.log.info({ generation: generation.id, backupId }, 'WAL archive: snapshot of the generation taken');
      } catch (err) {
        if (this.#stopping.signal.aborted) return;
        this.deps.log.warn({ generation: generation.id, reason: messageOf(err) }, 'WAL archive: the snapshot failed; trying again');
      } finally {
        this.#snapshot = undefined;
      }
    })();
  }

  /** Resolves with the time of the next sync point once what it read is stored. */
  private nextStoredSyncPoint(): Promise<string> {
    const since = Date.now();
    return new Promise((resolve) => this.#syncWaiters.push({ since, resolve }));
  }

  /** One interval's work: ship new commits, then a sync point (and a checkpoint when due). */
  private async sync(): Promise<void> {
    const generation = this.#generation;
    if (!generation) throw new Gap('archiving started');
    if (this.rolloverDue(generation)) {
      // Not a gap: a fresh snapshot now and then keeps a restore's replay short and lets old history go.
      await this.newGeneration(`rollover: generation ${generation.id} began ${generation.started_at}`, false);
      return;
    }
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) await this.prune();
    if (generation.snapshot_backup_id === null) {
      const fresh = this.deps.catalog.wal.generation(generation.id);
      if (fresh) this.#generation = fresh;
      if (fresh?.snapshot_backup_id === null && !this.#snapshot) this.snapshotInBackground(fresh);
    }
    await this.shipNew();
    // Under the write lock only the reading: storing (compression, fsync, the catalog) waits
    // until the writers are free again, with the frames in hand.
    const finishCheckpoint = this.#resetDue;
    const point = await this.atSyncPoint(async () => {
      // Everything up to the WAL's end must be in hand before the writers go on (a sync point
      // vouches for it): a backlog past READ_LIMIT is stored here, chunk by chunk, rare as it is.
      let pending = await this.readNew();
      while (pending && !pending.read.complete) {
        await this.store(pending);
        pending = await this.readNew();
      }
      return pending;
    }, finishCheckpoint);
    if (point.held) {
      if (finishCheckpoint) this.#resetDue = false;
      if (point.value) await this.store(point.value);
      // A snapshot is covered by a sync point that began after it completed, from the moment its
      // last segment was read: a target before that would replay frames older than the snapshot's
      // pages over them, a state that never existed.
      const covered = new Date(Math.max(this.#storedThrough, point.value?.readAt.getTime() ?? 0)).toISOString();
      const due = this.#syncWaiters.filter((w) => w.since <= this.#storedThrough);
      this.#syncWaiters = this.#syncWaiters.filter((w) => !due.includes(w));
      for (const { resolve } of due) resolve(covered);
      this.#busySyncs = 0;
      if (this.checkpointDue()) await this.checkpoint();
    } else if (++this.#busySyncs >= BUSY_SYNCS_BEFORE_RELEASE) {
      // Someone has held the write lock across syncs: perhaps a checkpoint of the application's
      // that waits for readers (TRUNCATE, RESTART). Let it through rather than stall its writers.
      await this.#reader!.endRead();
      this.#safe = false;
      await sleep(RELEASE_MS);
      await this.#reader!.beginRead();
      this.#busySyncs = 0;
    }
    this.#progress.lastSyncAt = new Date().toISOString();
  }

  /**
   * Holds the application's writers off (BEGIN IMMEDIATE, waiting at most a moment), drops and
   * retakes the read mark, runs `work`, and lets the writers go. False when the write lock was
   * not free (nothing was run).
   */
  private async atSyncPoint<T>(work: () => Promise<T>, checkpointFirst = false): Promise<{ held: true; value: T } | { held: false }> {
    const writer = this.#writer!;
    try {
      await writer.run('BEGIN IMMEDIATE');
    } catch (err) {
      if (/SQLITE_BUSY|locked/i.test(`${(err as { code?: string }).code} ${messageOf(err)}`)) return { held: false };
      throw err;
    }
    try {
      const at = Date.now();
      await this.#reader!.endRead();
      // The end of a checkpoint begun outside: the few frames written since, with no read mark
      // held, so that the whole WAL is in the database file and the next writer starts it afresh.
      if (checkpointFirst) await this.#reader!.run('PRAGMA wal_checkpoint(PASSIVE)');
      await this.#reader!.beginRead();
      const value = await work();
      this.#safe = true;
      this.#storedThrough = at;
      return { held: true, value };
    } finally {
      await writer.run('ROLLBACK').catch(() => undefined);
    }
  }

  /** `atSyncPoint`, waiting through a few busy rounds; throws when the write lock stays taken. */
  private async atSyncPointSoon<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const result = await this.atSyncPoint(work);
      if (result.held) return result.value;
      await sleep(50, undefined, { signal: this.opts.signal });
    }
    throw new Error('the application kept the write lock for seconds; trying again');
  }

  /**
   * The database file must be the one the connections opened, and the `-wal` file the one read
   * last: while the archiver's connections are open no SQLite deletes it, so another one means the
   * database was replaced, or the file removed by hand with frames in it never read.
   */
  private async checkIdentity(): Promise<void> {
    const db = await fileId(this.deps.config.databasePath);
    if (db !== this.#dbId)
      throw new Gap(db ? 'the database file was replaced (another file at its path)' : 'the database file was deleted');
    const wal = await fileId(this.walPath);
    if (this.#walId && wal !== this.#walId) {
      throw new Gap(wal ? 'the -wal file was replaced by another file' : 'the -wal file was deleted');
    }
    if (wal) this.#walId = wal;
  }

  private async readHeader(): Promise<WalHeader | null> {
    const handle = await fs.open(this.walPath, 'r').catch(() => null);
    if (!handle) return null;
    try {
      // A header being rewritten at a restart can be read half old, half new (its checksum fails):
      // look again before taking the file for empty, which would end the generation.
      for (let attempt = 0; ; attempt++) {
        const bytes = await readAt(handle, 0, WAL_HEADER_SIZE);
        const header = parseWalHeader(bytes);
        if (header || bytes.length < WAL_HEADER_SIZE || attempt === 3) return header;
        await sleep(5);
      }
    } finally {
      await handle.close();
    }
  }

  /** Scans from `from` to the WAL's last commit; also returns the bytes read. */
  private async committedEnd(from: WalPosition): Promise<Scanned> {
    const handle = await fs.open(this.walPath, 'r');
    try {
      const fileSize = (await handle.stat()).size;
      const size = frameSize(from.pageSize);
      let limit = Math.floor(READ_LIMIT / size) * size;
      for (;;) {
        const want = Math.max(0, Math.min(fileSize - from.offset, limit));
        const bytes = want > 0 ? await readAt(handle, from.offset, want) : Buffer.alloc(0);
        const scan = scanFrames(bytes, from.offset, from);
        const complete = bytes.length >= fileSize - from.offset;
        // One transaction larger than the limit: read on until its commit (a segment never ends inside one).
        if (scan.commits === 0 && !complete && scan.pendingFrames * size === bytes.length) {
          limit *= 2;
          continue;
        }
        return { end: scan.end, bytes, commits: scan.commits, dbSizePages: scan.dbSizePages, fileSize, complete };
      }
    } finally {
      await handle.close();
    }
  }

  /** Stores the commits after the position as one segment. */
  private async shipNew(): Promise<void> {
    const pending = await this.readNew();
    if (pending) await this.store(pending);
  }

  /**
   * Reads the commits after the position (checking the WAL's salts and checksum chain), without
   * storing them or moving the position. Throws `Gap` when the WAL started afresh and that cannot
   * be proven harmless, or when the page size changed.
   */
  private async readNew(): Promise<Pending | undefined> {
    const header = await this.readHeader();
    this.#progress.walBytes = await fs.stat(this.walPath).then(
      (s) => s.size,
      () => 0,
    );
    await this.checkIdentity();
    if (!header) {
      // Empty: nothing written since the WAL was last emptied. With frames after the position
      // still unread (or unknown), only a TRUNCATE checkpoint or a deleted file empties it.
      if (this.#pos) throw new Gap('the -wal file was emptied (a TRUNCATE checkpoint, or deleted) after the last frames the archive holds');
      return undefined;
    }
    const generation = this.#generation!;
    if (header.pageSize !== generation.page_size) throw new Gap(`the page size changed from ${generation.page_size} to ${header.pageSize}`);
    if (!this.#pos || header.salt1 !== this.#pos.salt1 || header.salt2 !== this.#pos.salt2) {
      // The WAL started afresh. Harmless when the read mark has been held since a sync point, and
      // only once: each restart adds one to salt-1, so other salts mean another file or more restarts.
      if (!this.#safe) throw new Gap('the WAL was reset by another connection while the archiver had let go of it');
      if (this.#pos && header.salt1 !== restartSalt(this.#pos.salt1)) {
        throw new Gap(
          `the WAL's salts do not follow a single restart (salt-1 ${this.#pos.salt1} then ${header.salt1}): replaced, or restarted unseen`,
        );
      }
      this.#pos = startOf(header);
    } else if ((await fileSize(this.walPath)) < this.#pos.offset) {
      throw new Gap(`the -wal file shrank below the archive's position ${this.#pos.offset}`);
    }
    const from = this.#pos;
    const read = await this.committedEnd(from);
    this.#progress.lagBytes = read.end.offset - from.offset;
    if (read.end.offset === from.offset) return undefined;
    return { from, read, readAt: new Date() };
  }

  private async store({ from, read, readAt }: Pending): Promise<void> {
    const generation = this.#generation!;
    const segment = await storeSegment(this.deps.config, this.deps.catalog, {
      generationId: generation.id,
      bytes: read.bytes.subarray(0, read.end.offset - from.offset),
      salt1: from.salt1,
      salt2: from.salt2,
      bigEndian: from.bigEndian,
      pageSize: from.pageSize,
      firstOffset: from.offset,
      startChecksum: from.checksum,
      endChecksum: read.end.checksum,
      commits: read.commits,
      dbSizePages: read.dbSizePages,
      readAt,
    });
    this.#pos = read.end;
    this.#framesSinceCheckpoint += segment.frames;
    this.#progress.segments++;
    this.#progress.lagBytes = 0;
    // Copying it to the mirror is the mirror loop's (segment-mirror.ts), beside this one: a bucket
    // that hangs never holds up a sync.
  }

  private rolloverDue(generation: WalGenerationRow): boolean {
    const retention = this.opts.retentionMs?.() ?? ROLLOVER_MAX_MS * 2;
    return Date.now() - Date.parse(generation.started_at) > Math.min(retention / 2, ROLLOVER_MAX_MS);
  }

  /** Deletes the generations (rows, then segment files) that ended more than WAL_RETENTION ago. */
  private async prune(): Promise<void> {
    this.#lastPrune = Date.now();
    const retention = this.opts.retentionMs?.();
    if (!retention) return;
    const { catalog } = this.deps;
    const pruned = catalog.wal.pruneGenerations(new Date(Date.now() - retention).toISOString(), catalog.leasedBackupIds());
    if (!pruned.generations.length) return;
    await removeGenerations(this.deps.config, catalog, pruned);
    this.deps.log.info(
      { generations: pruned.generations, segments: pruned.files.length },
      'WAL archive: removed generations older than WAL_RETENTION',
    );
  }

  private checkpointDue(): boolean {
    if (this.#framesSinceCheckpoint >= CHECKPOINT_FRAMES) return true;
    return this.#framesSinceCheckpoint > 0 && Date.now() - this.#lastCheckpoint >= CHECKPOINT_MS;
  }

  /**
   * A PASSIVE checkpoint on the writer's connection while the read mark, taken at the last sync
   * point, stays held: it copies into the database file what is stored (the frames up to the mark)
   * and never goes past it, never waits and never blocks the application. The next sync point
   * finishes it without the read mark (only the frames written since are left to copy, while the
   * writers are held off), so the next writer starts the WAL afresh: the file stays about as large
   * as what is written between two checkpoints. Past TRUNCATE_BYTES
   * (the application's own readers kept it from starting afresh), the file is cut back with
   * TRUNCATE, which needs the read mark let go: continuity then cannot be proven, and the next
   * generation begins.
   */
  private async checkpoint(): Promise<void> {
    const writer = this.#writer!;
    if (this.#progress.walBytes > TRUNCATE_BYTES) {
      await this.#reader!.endRead();
      this.#safe = false;
      try {
        const [result] = await writer.all<{ busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(TRUNCATE)');
        this.deps.log.warn(
          { walBytes: this.#progress.walBytes, ...result },
          'WAL archive: the -wal file grew past its bound; truncated it',
        );
      } finally {
        await this.#reader!.beginRead();
      }
    } else {
      const [result] = await writer.all<{ busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)');
      this.deps.log.debug({ ...result }, 'WAL archive: checkpoint');
      this.#resetDue = true;
    }
    this.#framesSinceCheckpoint = 0;
    this.#lastCheckpoint = Date.now();
  }

  private async report(): Promise<void> {
    const p = this.#progress;
    p.generation = this.#generation?.id ?? null;
    p.position = this.#pos?.offset ?? null;
    p.lagMs = this.#generation ? Date.now() - this.#storedThrough : 0;
    await Promise.resolve(this.opts.onProgress?.(this.progress)).catch(() => undefined);
  }

  /** Lets go of the read mark and closes the connections. */
  async close(): Promise<void> {
    const reader = this.#reader;
    const writer = this.#writer;
    this.#reader = undefined;
    this.#writer = undefined;
    this.#safe = false;
    await Promise.all([reader?.close().catch(() => undefined), writer?.close().catch(() => undefined)]);
  }
}

/** Where the WAL continues after a stored segment. */
export function positionAfter(segment: WalSegmentRow): WalPosition {
  return {
    salt1: segment.salt1,
    salt2: segment.salt2,
    pageSize: segment.page_size,
    bigEndian: segment.big_endian === 1,
    offset: segment.last_offset,
    checksum: [segment.end_checksum0, segment.end_checksum1],
  };
}

/** Device and inode: which file a path names now (undefined when nothing does). */
async function fileId(file: string): Promise<string | undefined> {
  return fs.stat(file).then(
    (st) => `${st.dev}:${st.ino}`,
    () => undefined,
  );
}

async function fileSize(file: string): Promise<number> {
  return fs.stat(file).then(
    (st) => st.size,
    () => 0,
  );
}
