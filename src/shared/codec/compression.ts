import { Transform, type TransformCallback } from 'node:stream';
import os from 'node:os';
import { promisify } from 'node:util';
import { createGunzip, constants, gzip, type ZlibOptions } from 'node:zlib';
import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import type { CompressionMode } from '../domain/backup-types.js';

/**
 * Level 1 for both: backups favour speed over the last few percent. zstd level 1 compresses
 * several times faster than gzip level 1 and smaller (see `npm run bench`).
 */
const ZSTD_LEVEL = 1;

/** Input bytes per zstd frame: large enough for a good ratio, small enough to stream. */
const ZSTD_FRAME_INPUT = 4 << 20;

/*
 * The zstd binding compresses whole buffers, so a backup is written as a sequence of independent
 * zstd frames, each announced by a zstd *skippable* frame that holds the next frame's length.
 * The `zstd` command line skips skippable frames and concatenates the rest, so
 * `zstd -d backup.db.zst` still reads it; this reader uses the lengths to stream frame by frame.
 */
const SKIPPABLE_MAGIC = 0x184d2a5b;
const MAX_FRAME_BYTES = 2 * ZSTD_FRAME_INPUT;
const ANNOUNCE_BYTES = 12;

function announce(length: number): Buffer {
  const b = Buffer.alloc(ANNOUNCE_BYTES);
  b.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  b.writeUInt32LE(4, 4);
  b.writeUInt32LE(length, 8);
  return b;
}

/**
 * Compresses a stream as a sequence of independent blocks, several at once, and writes them out
 * in input order. Both codecs' bindings compress on libuv's thread pool, so blocks in flight
 * together run on separate cores while the event loop stays free; no worker thread is needed.
 * At most one block per core is in flight (plus the one being filled), which bounds the memory
 * to a few blocks and keeps the backup from taking cores the writers need beyond that.
 */
class ParallelBlockEncoder extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Blocks being compressed, oldest first: their outputs are pushed in this order. */
  private inFlight: Promise<Buffer[]>[] = [];

  constructor(
    private readonly pack: (block: Buffer) => Promise<Buffer[]>,
    private readonly blockBytes: number,
    private readonly parallel = Math.max(1, os.availableParallelism()),
  ) {
    super();
  }

  private start(block: Buffer): void {
    const packed = this.pack(block);
    // A rejection is handled where the block is awaited; this only stops it being reported early.
    packed.catch(() => undefined);
    this.inFlight.push(packed);
  }

  /** Pushes finished blocks in order until fewer than `limit` are in flight. */
  private async settle(limit: number): Promise<void> {
    while (this.inFlight.length > limit) {
      for (const part of await this.inFlight.shift()!) this.push(part);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.blockBytes) return done();
    let input = Buffer.concat(this.pending);
    // At most `blockBytes` per block however large the chunk (a WAL segment comes as one): the
    // zstd reader refuses a frame longer than MAX_FRAME_BYTES as damage.
    const blocks: Buffer[] = [];
    while (input.length >= this.blockBytes) {
      blocks.push(input.subarray(0, this.blockBytes));
      input = input.subarray(this.blockBytes);
    }
    this.pending = input.length ? [input] : [];
    this.pendingBytes = input.length;
    (async () => {
      for (const block of blocks) {
        this.start(block);
        await this.settle(this.parallel - 1);
      }
    })().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingBytes) this.start(Buffer.concat(this.pending));
    this.pending = [];
    this.settle(0).then(() => done(), done);
  }
}

/** One zstd frame, announced by the skippable frame that holds its length. */
async function zstdFrame(input: Buffer): Promise<Buffer[]> {
  const packed = await zstdCompress(input, ZSTD_LEVEL);
  return [announce(packed.length), packed];
}

const gzipMember = promisify<Buffer, ZlibOptions, Buffer>(gzip);

/**
 * Input bytes per gzip member. A gzip file may hold several members one after the other, and
 * `gzip -d` and Node's gunzip both read it as the concatenation of their contents: so blocks
 * compress independently, in parallel. Each member restarts gzip's 32 KiB window, which costs
 * well under a percent of size at this block size.
 */
const GZIP_MEMBER_INPUT = 4 << 20;

const gzipBlock = async (input: Buffer): Promise<Buffer[]> => [await gzipMember(input, { level: constants.Z_BEST_SPEED })];

class ZstdDecodeStream extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes needed before the next frame can be decoded (its announcement, then the frame). */
  private needed = ANNOUNCE_BYTES;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    // Collect small reads and join them once the next frame is complete, not on every read.
    this.parts.push(chunk);
    this.partBytes += chunk.length;
    if (this.buffered.length + this.partBytes < this.needed) return done();
    this.buffered = Buffer.concat([this.buffered, ...this.parts]);
    this.parts = [];
    this.partBytes = 0;
    this.drain().then(() => done(), done);
  }

  private async drain(): Promise<void> {
    for (;;) {
      this.needed = ANNOUNCE_BYTES;
      if (this.buffered.length < ANNOUNCE_BYTES) return;
      if (this.buffered.readUInt32LE(0) !== SKIPPABLE_MAGIC || this.buffered.readUInt32LE(4) !== 4) {
        throw new Error('not a zstd backup written by this service (frame announcement missing)');
      }
      const length = this.buffered.readUInt32LE(8);
      // zstd never grows input by more than a little: a larger length is damage, not a frame to wait for.
      if (length > MAX_FRAME_BYTES) throw new Error(`not a zstd backup written by this service (frame of ${length} bytes announced)`);
      this.needed = ANNOUNCE_BYTES + length;
      if (this.buffered.length < this.needed) return;
      const frame = this.buffered.subarray(ANNOUNCE_BYTES, ANNOUNCE_BYTES + length);
      this.buffered = this.buffered.subarray(ANNOUNCE_BYTES + length);
      this.push(await zstdDecompress(frame));
    }
  }

  override _flush(done: TransformCallback): void {
    done(this.buffered.length || this.partBytes ? new Error('the zstd backup is truncated (incomplete frame)') : undefined);
  }
}

/** A stream that compresses in the given mode. */
export function compressor(mode: Exclude<CompressionMode, 'none'>): Transform {
  return mode === 'gzip' ? new ParallelBlockEncoder(gzipBlock, GZIP_MEMBER_INPUT) : new ParallelBlockEncoder(zstdFrame, ZSTD_FRAME_INPUT);
}

export function decompressor(mode: Exclude<CompressionMode, 'none'>): Transform {
  return mode === 'gzip' ? createGunzip() : new ZstdDecodeStream();
}
