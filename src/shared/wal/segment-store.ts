import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Catalog } from '../catalog/catalog.js';
import type { WalSegmentRow } from '../catalog/catalog-schema.js';
import type { NewSegment } from '../catalog/repositories/wal.js';
import { sha256File } from '../codec/checksum.js';
import { compressor, decompressor } from '../codec/compression.js';
import { DecryptStream, EncryptStream, keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import { ensurePrivateDir, fsyncPath, removeQuietly, tempPath } from '../runtime/files.js';
import { LocalDirStorage } from '../storage/local-dir.js';
import { openStorage } from '../storage/registry.js';
import type { BackupStorage } from '../storage/storage.js';
import { walChecksum, type Checksum, frameSize, FRAME_HEADER_SIZE } from './wal-format.js';

/** The folder (on the primary and the mirror) that holds the WAL archive's segments. */
export const WAL_FOLDER = 'wal';

export interface SegmentStores {
  primary: LocalDirStorage;
  mirror: BackupStorage | undefined;
}

const made = new WeakMap<Config, SegmentStores>();

/** Where segments go: `BACKUP_DIR/wal/`, and `wal/` under the mirror's directory or prefix. Made once per process. */
export function segmentStoresOf(config: Config): SegmentStores {
  let stores = made.get(config);
  if (!stores) {
    stores = {
      primary: new LocalDirStorage('primary', path.join(config.backupDir, WAL_FOLDER)),
      mirror: config.mirrorUrl ? openStorage('mirror', `${config.mirrorUrl}/${WAL_FOLDER}`, config) : undefined,
    };
    made.set(config, stores);
  }
  return stores;
}

/** `wal-<generation>-<seq>.zst[.enc]`: sorts in archive order. */
export function segmentBaseName(generationId: number, firstOffset: number, readAt: Date): string {
  return `wal-${String(generationId).padStart(8, '0')}-${readAt.getTime().toString().padStart(14, '0')}-${firstOffset}`;
}

/** The frames of one sync, before they are stored. */
export interface SegmentFrames {
  generationId: number;
  /** Whole frames, the last one a commit frame. */
  bytes: Buffer;
  salt1: number;
  salt2: number;
  bigEndian: boolean;
  pageSize: number;
  firstOffset: number;
  startChecksum: Checksum;
  endChecksum: Checksum;
  commits: number;
  dbSizePages: number;
  readAt: Date;
}

/**
 * Compresses (zstd) and, with a key, encrypts the frames into a temp file in `BACKUP_DIR/wal`,
 * fsyncs it, gives it its name and records it in the catalog. Returns the row. Copying it to the
 * mirror is not done here: `catchUpSegments` does it beside the archiver (segment-mirror.ts), so
 * that a bucket that hangs never holds up the local archive.
 */
export async function storeSegment(config: Config, catalog: Catalog, frames: SegmentFrames): Promise<WalSegmentRow> {
  const { primary } = segmentStoresOf(config);
  const key = keyringOf(config).write;
  await ensurePrivateDir(primary.dir);
  const temp = tempPath(primary.dir, 'put');
  try {
    await pipeline([
      Readable.from([frames.bytes]),
      compressor('zstd'),
      ...(key ? [new EncryptStream(key)] : []),
      createWriteStream(temp, { mode: 0o600 }),
    ] as unknown as NodeJS.ReadWriteStream[]);
    await fsyncPath(temp);
    const name = await primary.adopt(
      temp,
      segmentBaseName(frames.generationId, frames.firstOffset, frames.readAt),
      key ? '.zst.enc' : '.zst',
    );
    // Of the bytes on disk, read back.
    const checksum = await sha256File(primary.localPath(name));
    const size = (await fs.stat(primary.localPath(name))).size;
    const row: NewSegment = {
      generation_id: frames.generationId,
      file_name: name,
      salt1: frames.salt1,
      salt2: frames.salt2,
      big_endian: frames.bigEndian ? 1 : 0,
      page_size: frames.pageSize,
      first_offset: frames.firstOffset,
      last_offset: frames.firstOffset + frames.bytes.length,
      start_checksum0: frames.startChecksum[0],
      start_checksum1: frames.startChecksum[1],
      end_checksum0: frames.endChecksum[0],
      end_checksum1: frames.endChecksum[1],
      frames: frames.bytes.length / frameSize(frames.pageSize),
      commits: frames.commits,
      db_size_pages: frames.dbSizePages,
      read_at: frames.readAt.toISOString(),
      size_bytes: size,
      checksum,
      compression: 'zstd',
      encryption: key?.id ?? null,
    };
    let seq: number;
    try {
      seq = catalog.wal.addSegment(row);
    } catch (err) {
      // Not recorded, so not kept: a segment file is in the archive only with its row.
      await primary.remove(name).catch(() => undefined);
      throw err;
    }
    return { ...row, seq, mirrored: null };
  } finally {
    await removeQuietly(temp);
  }
}

/** Copies a stored segment to the mirror and records the outcome; throws when the copy failed. */
export async function mirrorSegment(config: Config, catalog: Catalog, segment: WalSegmentRow, signal?: AbortSignal): Promise<boolean> {
  const { primary, mirror } = segmentStoresOf(config);
  if (!mirror) return false;
  try {
    await mirror.put(primary.localPath(segment.file_name), segment.file_name, segment.checksum, { signal });
    catalog.wal.setMirrored(segment.file_name, true);
    return true;
  } catch (err) {
    catalog.wal.setMirrored(segment.file_name, false);
    throw Object.assign(new Error(messageOf(err)), { cause: err });
  }
}

/** What one pass of `catchUpSegments` did. */
export interface CatchUp {
  copied: number;
  /** Why the pass stopped before the end: the mirror failed (it is down, hangs or refuses). */
  error?: string;
  /** Segments whose own file is missing from `BACKUP_DIR/wal`: they cannot be copied (verification names them). */
  missing: string[];
  /** Whether segments may be left to copy (a batch's worth was taken, or the pass stopped early). */
  more: boolean;
}

/**
 * Copies the segments the catalog says the mirror lacks, oldest first, one at a time, and stops at
 * the first failure of the mirror (the next pass tries again). A segment whose own file is gone is
 * passed over rather than holding up the ones after it.
 */
export async function catchUpSegments(config: Config, catalog: Catalog, signal?: AbortSignal, batch = 1_000): Promise<CatchUp> {
  const { primary, mirror } = segmentStoresOf(config);
  const pass: CatchUp = { copied: 0, missing: [], more: false };
  if (!mirror) return pass;
  const segments = catalog.wal.unmirrored(batch);
  for (const segment of segments) {
    if (signal?.aborted) return { ...pass, more: true };
    try {
      await mirrorSegment(config, catalog, segment, signal);
      pass.copied++;
    } catch (err) {
      if (signal?.aborted) return { ...pass, more: true };
      const here = await fs.access(primary.localPath(segment.file_name)).then(
        () => true,
        () => false,
      );
      if (here) return { ...pass, error: messageOf(err), more: true };
      pass.missing.push(segment.file_name);
    }
  }
  return { ...pass, more: segments.length === batch && pass.copied > 0 };
}

/** Why a segment cannot be used, or its frames. */
export type SegmentRead = { ok: true; frames: Buffer; source: 'primary' | 'mirror' } | { ok: false; problem: string };

async function readFrom(store: BackupStorage, segment: WalSegmentRow, config: Config): Promise<Buffer> {
  // Segments are small (one sync's frames): read whole, hashed before anything else touches them.
  const parts: Buffer[] = [];
  for await (const chunk of (await store.read(segment.file_name)) as AsyncIterable<Buffer>) parts.push(chunk);
  const stored = Buffer.concat(parts);
  const actual = createHash('sha256').update(stored).digest('hex');
  if (actual !== segment.checksum) throw new Error(`checksum mismatch (expected ${segment.checksum}, found ${actual})`);
  const out: Buffer[] = [];
  await pipeline([
    Readable.from([stored]),
    ...(segment.encryption ? [new DecryptStream(keyringOf(config))] : []),
    decompressor('zstd'),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk);
        done();
      },
    }),
  ] as unknown as NodeJS.ReadWriteStream[]);
  return Buffer.concat(out);
}

/**
 * A segment's frames, read from the primary (or the mirror when the primary copy is missing or
 * bad), with its SHA-256, decryption and the WAL checksum chain checked: the frames must carry
 * the segment's salts and continue its start checksum to its end checksum.
 */
export async function readSegment(config: Config, segment: WalSegmentRow): Promise<SegmentRead> {
  const { primary, mirror } = segmentStoresOf(config);
  const problems: string[] = [];
  for (const [source, store] of [
    ['primary', primary],
    ['mirror', mirror],
  ] as const) {
    if (!store) continue;
    try {
      const frames = await readFrom(store, segment, config);
      const problem = chainProblem(segment, frames);
      if (problem) throw new Error(problem);
      return { ok: true, frames, source };
    } catch (err) {
      problems.push(`${source}: ${messageOf(err)}`);
    }
  }
  return { ok: false, problem: `segment ${segment.file_name}: ${problems.join('; ')}` };
}

/** Whether the frames are the segment's: salts, sizes and the checksum chain from start to end. */
export function chainProblem(segment: WalSegmentRow, frames: Buffer): string | undefined {
  const size = frameSize(segment.page_size);
  if (frames.length !== segment.last_offset - segment.first_offset || frames.length % size !== 0)
    return `holds ${frames.length} bytes of frames, expected ${segment.last_offset - segment.first_offset}`;
  let checksum: Checksum = [segment.start_checksum0, segment.start_checksum1];
  const bigEndian = segment.big_endian === 1;
  for (let at = 0; at < frames.length; at += size) {
    const header = frames.subarray(at, at + FRAME_HEADER_SIZE);
    if (header.readUInt32BE(8) !== segment.salt1 || header.readUInt32BE(12) !== segment.salt2)
      return `frame at ${segment.first_offset + at} has other salts`;
    checksum = walChecksum(header.subarray(0, 8), bigEndian, checksum);
    checksum = walChecksum(frames.subarray(at + FRAME_HEADER_SIZE, at + size), bigEndian, checksum);
    if (checksum[0] !== header.readUInt32BE(16) || checksum[1] !== header.readUInt32BE(20))
      return `frame at ${segment.first_offset + at} breaks the WAL checksum chain`;
  }
  if (checksum[0] !== segment.end_checksum0 || checksum[1] !== segment.end_checksum1) return 'does not end on its recorded checksum';
  return undefined;
}

/** Deletes segment files from the primary and the mirror (retention); failures are left for the next pass. */
export async function removeSegmentFiles(config: Config, names: string[]): Promise<void> {
  const { primary, mirror } = segmentStoresOf(config);
  for (const name of names) {
    await primary.remove(name).catch(() => undefined);
    await mirror?.remove(name).catch(() => undefined);
  }
}
