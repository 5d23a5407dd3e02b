import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import type { ArchiverDeps, ArchiverProgress } from './archiver-types.js';
import type { Checkpoints } from './checkpoint.js';
import { continuedFrom } from './continuity.js';
import type { ReadMark } from './read-mark.js';
import { storeSegment } from './segment-store.js';
import { committedEnd, fileSize, readHeader, type Scanned } from './wal-file.js';
import type { WalPosition } from './wal-format.js';

/**
 * The archive's position in the `-wal` file, and moving it on: reading the commits after it (each
 * look checked for the files' identity and for continuity) and storing them as a segment.
 */

/** Committed frames read from the WAL and not stored yet. */
export interface Pending {
  from: WalPosition;
  read: Scanned;
  readAt: Date;
}

export class WalShipper {
  /** The next frame to ship; undefined when the WAL was empty at the last sync point. */
  pos: WalPosition | undefined;

  constructor(
    private readonly deps: Pick<ArchiverDeps, 'config' | 'catalog'>,
    /** The archiver's progress: this updates the `-wal` file's size, the bytes read and not stored, the segments stored. */
    private readonly progress: ArchiverProgress,
    private readonly checkpoints: Checkpoints,
  ) {}

  private get walPath(): string {
    return `${this.deps.config.databasePath}-wal`;
  }

  /** Stores the commits after the position as one segment. */
  async shipNew(generation: WalGenerationRow, mark: ReadMark): Promise<void> {
    const pending = await this.readNew(generation, mark);
    if (pending) await this.store(generation, pending);
  }

  /**
   * Reads the commits after the position (checking the WAL's salts and checksum chain), without
   * storing them or moving the position. Throws `Gap` when the WAL started afresh and that cannot
   * be proven harmless, or when the page size changed.
   */
  async readNew(generation: WalGenerationRow, mark: ReadMark): Promise<Pending | undefined> {
    const header = await readHeader(this.walPath);
    this.progress.walBytes = await fileSize(this.walPath);
    await mark.files.check();
    const from = await continuedFrom(this.walPath, header, { pos: this.pos, safe: mark.safe, generation });
    if (!from) return undefined;
    // A WAL started afresh (and proven harmless) is read from its top.
    this.pos = from;
    const read = await committedEnd(this.walPath, from);
    this.progress.lagBytes = read.end.offset - from.offset;
    if (read.end.offset === from.offset) return undefined;
    return { from, read, readAt: new Date() };
  }

  async store(generation: WalGenerationRow, { from, read, readAt }: Pending): Promise<void> {
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
    this.pos = read.end;
    this.checkpoints.stored(segment.frames);
    this.progress.segments++;
    this.progress.lagBytes = 0;
    // Copying it to the mirror is the mirror loop's (segment-mirror.ts), beside this one: a bucket
    // that hangs never holds up a sync.
  }
}
