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
import { codeOf } from '../domain/errors.js';
import { compressor, decompressor } from '../codec/compression.js';
import { DecryptStream, EncryptStream, keyringOf } from '../codec/encryption.js';
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

let stored = 0;
const storedEvents = new EventTarget();

/** How many segments this process has stored: the mirror loop wakes when it changes. */
export const segmentsStored = () => stored;

/** Resolves when this process stores its next segment, after `timeoutMs`, or when `signal` aborts. */
export function nextSegmentStored(timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      storedEvents.removeEventListener('stored', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    storedEvents.addEventListener('stored', done);
    signal.addEventListener('abort', done);
  });
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
 * fsyncs it, gives it its name and records it in the catalog. Returns the row. Sending it to the
 * bucket is not done here: `sendPending` (bucket-packs.ts) does it beside the archiver, so that a
 * bucket that hangs never holds up the local archive.
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
    ]);
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
    stored++;
    storedEvents.dispatchEvent(new Event('stored'));
    return { ...row, seq, mirrored: null };
  } finally {
    await removeQuietly(temp);
  }
}

/** Why a segment cannot be used, or its frames. */
export type SegmentRead = { ok: true; frames: Buffer; source: 'primary' | 'mirror' } | { ok: false; problem: string };

/**
 * A segment's frames from its stored bytes: SHA-256 of the stored bytes first, then decryption,
 * decompression and the WAL checksum chain (the frames must carry the segment's salts and continue
 * its start checksum to its end checksum). Throws with the reason.
 */
export async function decodeSegment(config: Config, segment: WalSegmentRow, stored: Buffer): Promise<Buffer> {
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
  ]);
  const frames = Buffer.concat(out);
  const problem = chainProblem(segment, frames);
  if (problem) throw new Error(problem);
  return frames;
}

/**
 * The stored bytes of a segment in BACKUP_DIR/wal when its file is there with the row's size and
 * SHA-256; undefined when it is gone, unreadable or damaged (the bucket's copy is the one to use).
 */
export async function intactLocalSegment(config: Config, segment: WalSegmentRow): Promise<Buffer | undefined> {
  const bytes = await localSegmentBytes(config, segment).catch(() => undefined);
  const intact = bytes?.length === segment.size_bytes && createHash('sha256').update(bytes).digest('hex') === segment.checksum;
  return intact ? bytes : undefined;
}

/** The stored bytes of a segment in BACKUP_DIR/wal, or undefined when its file is gone. */
export async function localSegmentBytes(config: Config, segment: WalSegmentRow): Promise<Buffer | undefined> {
  const { primary } = segmentStoresOf(config);
  try {
    return await fs.readFile(primary.localPath(segment.file_name));
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
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
