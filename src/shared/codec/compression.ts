import type { Transform } from 'node:stream';
import type { CompressionMode } from '../domain/backup-types.js';
import { ParallelBlockDecoder, ParallelBlockEncoder } from './block-pool.js';
import { GZIP_MEMBER_INPUT, GzipDecodeStream, gzipMember } from './gzip-members.js';
import { ZSTD_FRAME_INPUT, ZSTD_TRUNCATED, zstdFrame, zstdFramer } from './zstd-frames.js';

/**
 * Compression as independent blocks of 4 MiB input: zstd frames announced by skippable frames
 * (`zstd-frames.ts`), gzip members announcing their length in their header (`gzip-members.ts`).
 * Both are written and read several blocks at once on libuv's thread pool (`block-pool.ts`), and
 * both stay readable by the standard tools (`zstd -d`, `gzip -d`).
 */

/** The size of the reads that feed `compressor`: one block per read, so no read is joined or cut. */
export const COMPRESSION_BLOCK_BYTES = ZSTD_FRAME_INPUT;

/** A stream that compresses in the given mode. */
export function compressor(mode: Exclude<CompressionMode, 'none'>): Transform {
  return mode === 'gzip' ? new ParallelBlockEncoder(gzipMember, GZIP_MEMBER_INPUT) : new ParallelBlockEncoder(zstdFrame, ZSTD_FRAME_INPUT);
}

/** A stream that decompresses what `compressor` wrote, and gzip backups written before members announced their length. */
export function decompressor(mode: Exclude<CompressionMode, 'none'>): Transform {
  return mode === 'gzip' ? new GzipDecodeStream() : new ParallelBlockDecoder(zstdFramer(), ZSTD_TRUNCATED);
}
