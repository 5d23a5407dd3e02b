import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { COMPRESSION_BLOCK_BYTES, compressor, decompressor } from './compression.js';
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

/**
 * SHA-256 of the bytes going through, hex-encoded once they have all gone through: a file's
 * checksum taken while it is written or read for another reason, instead of a second pass over it.
 */
function hasher(): { stage: Transform; hex: () => string } {
  const hash = createHash('sha256');
  const stage = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stage, hex: () => hash.digest('hex') };
}

/**
 * Compresses, then encrypts (ciphertext does not compress). Resolves to the SHA-256 of the bytes
 * written to `destination`, the backup file's checksum.
 */
export async function encodeFile(
  source: string,
  destination: string,
  compression: CompressionMode,
  key: Key | undefined,
  onBytes?: (bytes: number) => void,
): Promise<string> {
  const written = hasher();
  // One compression block per read: the compressor takes each read as a block, without joining.
  const stages: Stage[] = [createReadStream(source, { highWaterMark: COMPRESSION_BLOCK_BYTES }), counter(onBytes)];
  if (compression !== 'none') stages.push(compressor(compression));
  if (key) stages.push(new EncryptStream(key));
  stages.push(written.stage, createWriteStream(destination, { mode: 0o600 }));
  await pipeline(stages);
  return written.hex();
}

/**
 * Decrypts (refusing the first chunk that fails authentication), then decompresses. Resolves to
 * the SHA-256 of the bytes read from `input`: the checksum of the backup file it was given.
 */
export async function decodeStream(
  input: Readable,
  destination: string,
  encoding: Encoding,
  ring: Keyring,
  onBytes?: (bytes: number) => void,
): Promise<string> {
  const read = hasher();
  const stages: Stage[] = [input, read.stage, counter(onBytes)];
  if (encoding.encryption) stages.push(new DecryptStream(ring));
  if ((encoding.compression ?? 'none') !== 'none') stages.push(decompressor(encoding.compression as Exclude<CompressionMode, 'none'>));
  stages.push(createWriteStream(destination, { mode: 0o600 }));
  await pipeline(stages);
  return read.hex();
}
