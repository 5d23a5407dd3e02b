import type { Logger } from '../runtime/logger.js';
import type { ReadMark } from './read-mark.js';

/**
 * The archiver's own checkpoints, which keep the `-wal` file small while its read mark keeps the
 * application's automatic ones from starting the WAL afresh: when one is due, and running it
 * (docs/wal-archiving.md, "Checkpoints and the size of the `-wal` file").
 */

/** PASSIVE checkpoint once this many frames were shipped since the last one… */
export const CHECKPOINT_FRAMES = 1_000;
/** …or this long after the last one, when anything was shipped since. */
export const CHECKPOINT_MS = 60_000;
/** TRUNCATE only when the `-wal` file has grown past this (readers kept PASSIVE from resetting it). */
export const TRUNCATE_BYTES = 256 * 1024 * 1024;

export class Checkpoints {
  #framesSinceCheckpoint = 0;
  #lastCheckpoint = Date.now();
  /** A checkpoint copied the stored frames: the next sync point finishes it so that the WAL can start afresh. */
  resetDue = false;

  /** Counts the frames of a stored segment. */
  stored(frames: number): void {
    this.#framesSinceCheckpoint += frames;
  }

  /** A new generation begins: its frames are counted from none. */
  newGeneration(): void {
    this.#framesSinceCheckpoint = 0;
  }

  due(): boolean {
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
  async run(mark: ReadMark, walBytes: number, log: Logger): Promise<void> {
    const writer = mark.writer;
    if (walBytes > TRUNCATE_BYTES) {
      await mark.withoutReadMark(async () => {
        const [result] = await writer.all<{ busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(TRUNCATE)');
        log.warn({ walBytes, ...result }, 'WAL archive: the -wal file grew past its bound; truncated it');
      });
    } else {
      const [result] = await writer.all<{ busy: number; log: number; checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)');
      log.debug({ ...result }, 'WAL archive: checkpoint');
      this.resetDue = true;
    }
    this.#framesSinceCheckpoint = 0;
    this.#lastCheckpoint = Date.now();
  }
}
