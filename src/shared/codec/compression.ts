import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip, constants } from 'node:zlib';
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

class ZstdEncodeStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  private async frame(input: Buffer): Promise<void> {
    const packed = await zstdCompress(input, ZSTD_LEVEL);
    this.push(announce(packed.length));
    this.push(packed);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < ZSTD_FRAME_INPUT) return done();
    let input = Buffer.concat(this.pending);
    // At most ZSTD_FRAME_INPUT bytes per frame however large the chunk (a WAL segment comes as
    // one): the reader refuses a frame longer than MAX_FRAME_BYTES as damage.
    const frames: Buffer[] = [];
    while (input.length >= ZSTD_FRAME_INPUT) {
      frames.push(input.subarray(0, ZSTD_FRAME_INPUT));
      input = input.subarray(ZSTD_FRAME_INPUT);
    }
    this.pending = input.length ? [input] : [];
    this.pendingBytes = input.length;
    (async () => {
      for (const f of frames) await this.frame(f);
    })().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    if (!this.pendingBytes) return done();
    this.frame(Buffer.concat(this.pending)).then(() => done(), done);
  }
}

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
  return mode === 'gzip' ? createGzip({ level: constants.Z_BEST_SPEED }) : new ZstdEncodeStream();
}

export function decompressor(mode: Exclude<CompressionMode, 'none'>): Transform {
  return mode === 'gzip' ? createGunzip() : new ZstdDecodeStream();
}
