import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, constants } from 'node:zlib';
import type { CompressionMode } from './config.js';

/** Compresses `source` into `destination`. Level 1: backups favour speed over the last few %. */
export async function compressFile(source: string, destination: string, mode: Exclude<CompressionMode, 'none'>): Promise<void> {
  switch (mode) {
    case 'gzip':
      await pipeline(
        createReadStream(source, { highWaterMark: 1 << 20 }),
        createGzip({ level: constants.Z_BEST_SPEED }),
        createWriteStream(destination, { mode: 0o600 }),
      );
  }
}

export async function decompressFile(source: string, destination: string, mode: Exclude<CompressionMode, 'none'>): Promise<void> {
  switch (mode) {
    case 'gzip':
      await pipeline(createReadStream(source, { highWaterMark: 1 << 20 }), createGunzip(), createWriteStream(destination, { mode: 0o600 }));
  }
}
