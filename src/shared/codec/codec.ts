import { createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressor, decompressor } from './compression.js';
import type { CompressionMode } from '../domain/backup-types.js';
import { DecryptStream, EncryptStream, type Key, type Keyring } from './encryption.js';

/** How a backup file's bytes relate to the SQLite database inside it. */
export interface Encoding {
  compression: CompressionMode;
  /** The id of the key it is encrypted with, or null. */
  encryption: string | null;
}

/** `.db`, `.db.gz`, `.db.zst`, each with `.enc` appended when encrypted. */
export function extensionOf(encoding: { compression: CompressionMode; encrypted: boolean }): string {
  const packed = encoding.compression === 'gzip' ? '.gz' : encoding.compression === 'zstd' ? '.zst' : '';
  return `.db${packed}${encoding.encrypted ? '.enc' : ''}`;
}

export const BACKUP_FILE_PATTERN = /^workstation-backup-.+\.db(\.gz|\.zst)?(\.enc)?$/;

export const isPlain = (e: Encoding) => (e.compression ?? 'none') === 'none' && !e.encryption;

type Stage = NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream;

/** Counts bytes going through, for progress on long copies. */
function counter(onBytes: ((bytes: number) => void) | undefined): Transform {
  if (!onBytes) return new PassThrough();
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      onBytes(total);
      done(null, chunk);
    },
  });
}

/** Compresses, then encrypts: ciphertext does not compress. */
export async function encodeFile(
  source: string,
  destination: string,
  compression: CompressionMode,
  key: Key | undefined,
  onBytes?: (bytes: number) => void,
): Promise<void> {
  const stages: Stage[] = [createReadStream(source, { highWaterMark: 1 << 20 }), counter(onBytes)];
  if (compression !== 'none') stages.push(compressor(compression));
  if (key) stages.push(new EncryptStream(key));
  stages.push(createWriteStream(destination, { mode: 0o600 }));
  await pipeline(stages);
}

/** Decrypts (refusing the first chunk that fails authentication), then decompresses. */
export async function decodeStream(
  input: Readable,
  destination: string,
  encoding: Encoding,
  ring: Keyring,
  onBytes?: (bytes: number) => void,
): Promise<void> {
  const stages: Stage[] = [input, counter(onBytes)];
  if (encoding.encryption) stages.push(new DecryptStream(ring));
  if ((encoding.compression ?? 'none') !== 'none') stages.push(decompressor(encoding.compression as Exclude<CompressionMode, 'none'>));
  stages.push(createWriteStream(destination, { mode: 0o600 }));
  await pipeline(stages);
}
