import { createRequire } from 'node:module';
import { messageOf } from '../domain/errors.js';
import type { Framed } from './block-pool.js';

/**
 * The zstd binding's own entry point (`@mongodb-js/zstd/bindings.js`), not its `index.js`: the
 * wrapper there drops the level argument, so every frame was compressed at the binding's default
 * (level 3, about 25 % more CPU per byte than level 1 on the application's data, measured with
 * `npm run bench:compression`). Both calls run on libuv's thread pool.
 */
interface ZstdBinding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}
const zstd = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as ZstdBinding;

/**
 * Level 1: backups favour speed over the last few percent. zstd level 1 compresses about twice as
 * fast as gzip level 1 and smaller; the negative ("fast") levels gain little speed on this data for
 * a clearly worse ratio.
 */
const ZSTD_LEVEL = 1;

/** Input bytes per zstd frame: large enough for a good ratio, small enough to stream. */
export const ZSTD_FRAME_INPUT = 4 << 20;

/*
 * The binding compresses whole buffers, so a backup is written as a sequence of independent zstd
 * frames, each announced by a zstd *skippable* frame that holds the next frame's length. The
 * `zstd` command line skips skippable frames and concatenates the rest, so `zstd -d backup.db.zst`
 * still reads it; this reader uses the lengths to decode several frames at once.
 */
const SKIPPABLE_MAGIC = 0x184d2a5b;
/** zstd never grows its input by more than a little: a longer frame announced is damage. */
const MAX_FRAME_BYTES = 2 * ZSTD_FRAME_INPUT;
const ANNOUNCE_BYTES = 12;

function announce(length: number): Buffer {
  const b = Buffer.alloc(ANNOUNCE_BYTES);
  b.writeUInt32LE(SKIPPABLE_MAGIC, 0);
  b.writeUInt32LE(4, 4);
  b.writeUInt32LE(length, 8);
  return b;
}

/** One zstd frame, announced by the skippable frame that holds its length. */
export async function zstdFrame(input: Buffer): Promise<Buffer[]> {
  const packed = await zstd.compress(input, ZSTD_LEVEL).catch((err: unknown) => {
    throw new Error(`zstd: ${messageOf(err)}`, { cause: err });
  });
  return [announce(packed.length), packed];
}

/** Frames are counted from 0 in the order they are read: an error names the one that failed. */
export function zstdFramer(): (buffered: Buffer) => Framed {
  let index = 0;
  return (buffered) => {
    if (buffered.length < ANNOUNCE_BYTES) return { needed: ANNOUNCE_BYTES };
    if (buffered.readUInt32LE(0) !== SKIPPABLE_MAGIC || buffered.readUInt32LE(4) !== 4) {
      throw new Error(`not a zstd backup written by this service (frame ${index}: announcement missing)`);
    }
    const length = buffered.readUInt32LE(8);
    if (length > MAX_FRAME_BYTES)
      throw new Error(`not a zstd backup written by this service (frame ${index} of ${length} bytes announced)`);
    if (buffered.length < ANNOUNCE_BYTES + length) return { needed: ANNOUNCE_BYTES + length };
    const at = index++;
    return {
      bytes: ANNOUNCE_BYTES + length,
      decode: async (unit) => {
        try {
          return [await zstd.decompress(unit.subarray(ANNOUNCE_BYTES))];
        } catch (err) {
          throw new Error(`zstd frame ${at} is damaged: ${messageOf(err)}`, { cause: err });
        }
      },
    };
  };
}

export const ZSTD_TRUNCATED = 'the zstd backup is truncated (incomplete frame)';
