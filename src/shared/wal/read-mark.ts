import { setTimeout as sleep } from 'node:timers/promises';
import { codeOf, messageOf, NotWalMode } from '../domain/errors.js';
import { SqliteConnection } from '../sqlite/connection.js';
import { fileId, HeldFiles } from './file-identity.js';

/**
 * The archiver's hold on the live database: two connections of its own, a read transaction kept
 * open on one of them (the read mark: while it is held the WAL cannot start afresh), and the sync
 * point, where the other holds the application's writers off for a moment while the read mark
 * moves to the WAL's end (docs/wal-archiving.md, "The promise, and its proof").
 */

/** How long a sync waits to hold the application's writers off for a moment. */
const WRITE_LOCK_WAIT_MS = 100;
/**
 * How long the read mark is let go then: longer than the 100 ms a waiting SQLite busy handler
 * sleeps between its tries, so that a checkpoint waiting for readers gets through rather than
 * keeping the application's writers waiting until its busy timeout.
 */
const RELEASE_MS = 150;

export class ReadMark {
  /** Whether the read mark has been held since a sync point (so one reset is harmless). */
  safe = false;

  private constructor(
    readonly reader: SqliteConnection,
    readonly writer: SqliteConnection,
    /** The database file the connections opened, and the `-wal` file last read. */
    readonly files: HeldFiles,
    /** Called at each sync point that held the writers off, with the moment it began: every commit before it is stored. */
    private readonly onSyncPoint: (at: number) => void,
  ) {}

  /**
   * Opens both connections on the database file (closed again when anything fails: the file was
   * replaced meanwhile, or it is not in WAL mode).
   */
  static async open(file: string, onSyncPoint: (at: number) => void): Promise<ReadMark> {
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
    const mark = new ReadMark(reader.value, writer.value, new HeldFiles(file, before), onSyncPoint);
    try {
      // Which file the connections hold: the path must name the same one at every look.
      if ((await fileId(file)) !== before) throw new Error(`${file} was replaced while the archiver opened it; trying again`);
      const [row] = await mark.reader.all<{ journal_mode: string }>('PRAGMA journal_mode');
      const mode = String(row?.journal_mode ?? 'unknown');
      if (mode.toLowerCase() !== 'wal') throw new NotWalMode(file, mode);
      // The archiver checkpoints itself, when what it read is stored; its connections never do on their own.
      await mark.reader.run('PRAGMA wal_autocheckpoint = 0');
      await mark.writer.run('PRAGMA wal_autocheckpoint = 0');
    } catch (err) {
      await mark.close();
      throw err;
    }
    return mark;
  }

  /**
   * Holds the application's writers off (BEGIN IMMEDIATE, waiting at most a moment), drops and
   * retakes the read mark, runs `work`, and lets the writers go. False when the write lock was
   * not free (nothing was run).
   */
  async atSyncPoint<T>(work: () => Promise<T>, checkpointFirst = false): Promise<{ held: true; value: T } | { held: false }> {
    const writer = this.writer;
    try {
      await writer.run('BEGIN IMMEDIATE');
    } catch (err) {
      if (/SQLITE_BUSY|locked/i.test(`${codeOf(err) ?? ''} ${messageOf(err)}`)) return { held: false };
      throw err;
    }
    try {
      const at = Date.now();
      await this.reader.endRead();
      // The end of a checkpoint begun outside: the few frames written since, with no read mark
      // held, so that the whole WAL is in the database file and the next writer starts it afresh.
      if (checkpointFirst) await this.reader.run('PRAGMA wal_checkpoint(PASSIVE)');
      await this.reader.beginRead();
      const value = await work();
      this.safe = true;
      this.onSyncPoint(at);
      return { held: true, value };
    } finally {
      await writer.run('ROLLBACK').catch(() => undefined);
    }
  }

  /** `atSyncPoint`, waiting through a few busy rounds; throws when the write lock stays taken. */
  async atSyncPointSoon<T>(work: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const result = await this.atSyncPoint(work);
      if (result.held) return result.value;
      await sleep(50, undefined, { signal });
    }
    throw new Error('the application kept the write lock for seconds; trying again');
  }

  /**
   * Lets go of the read mark while `work` runs, then takes it again. Not at a sync point: the WAL
   * may start afresh meanwhile, and that cannot be proven harmless (`safe` is false).
   */
  async withoutReadMark<T>(work: () => Promise<T>): Promise<T> {
    await this.reader.endRead();
    this.safe = false;
    try {
      return await work();
    } finally {
      await this.reader.beginRead();
    }
  }

  /** Lets go of the read mark for RELEASE_MS: a checkpoint of the application's waiting for readers gets through. */
  async letGoBriefly(): Promise<void> {
    await this.withoutReadMark(() => sleep(RELEASE_MS));
  }

  /** Lets go of the read mark and closes the connections. */
  async close(): Promise<void> {
    this.safe = false;
    await Promise.all([this.reader.close().catch(() => undefined), this.writer.close().catch(() => undefined)]);
  }
}
