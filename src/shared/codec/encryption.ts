import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import type { Config } from '../runtime/config.js';
import { KeyError, messageOf } from '../domain/errors.js';

/**
 * Encryption at rest: AES-256-GCM over fixed-size chunks, so a backup of any size streams through
 * in constant memory and every chunk carries its own tag (a flipped byte is found in the chunk it
 * is in, before any plaintext of that chunk is used).
 *
 * File layout:
 *   header  = "WSBKENC1" | key id (8) | nonce prefix (8, random per file) | chunk size (u32 BE)
 *   records = ciphertext of each chunk | tag (16)
 * Chunk i uses nonce = prefix | u32 BE(i) and authenticates header | u32 BE(i) | final flag, so
 * chunks cannot be reordered, moved between files, or cut off at a chunk boundary unnoticed
 * (the last record must carry the final flag).
 */
const MAGIC = Buffer.from('WSBKENC1');
const HEADER_BYTES = MAGIC.length + 8 + 8 + 4;
const TAG_BYTES = 16;
export const CHUNK_BYTES = 1 << 20;
const MAX_CHUNK_BYTES = 64 << 20;
export const ENCRYPTION_ALGORITHM = 'aes-256-gcm-chunked';

export interface Key {
  /** 16 hex digits naming the key without revealing it; stored in headers and manifests. */
  id: string;
  bytes: Buffer;
}

export interface Keyring {
  /** The key new backups are written with, or undefined when encryption is off. */
  write: Key | undefined;
  /** Every key that may read a backup: the write key and any older keys kept for rotation. */
  read: Map<string, Key>;
}

export function keyId(bytes: Buffer): string {
  return createHash('sha256').update('workstation-backup key id\0').update(bytes).digest('hex').slice(0, 16);
}

function toKey(bytes: Buffer): Key {
  return { id: keyId(bytes), bytes };
}

/** A key file holds the key as base64 (one line), or as 32 raw bytes. */
function readKeyFile(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new KeyError('key_file_unreadable', `cannot read BACKUP_ENCRYPTION_KEY_FILE ${file}: ${messageOf(err)}`, { cause: err });
  }
  if (raw.length === 32) return raw;
  const decoded = Buffer.from(raw.toString('utf8').trim(), 'base64');
  if (decoded.length !== 32)
    throw new KeyError('key_file_invalid', `BACKUP_ENCRYPTION_KEY_FILE ${file} does not hold a 32-byte key (base64 or raw)`);
  return decoded;
}

const keyrings = new WeakMap<Config, Keyring>();

/** The keys of a configuration; the key file is read once per configuration. */
export function keyringOf(config: Config): Keyring {
  let ring = keyrings.get(config);
  if (ring) return ring;
  const writeBytes = config.encryptionKey
    ? Buffer.from(config.encryptionKey, 'base64')
    : config.encryptionKeyFile
      ? readKeyFile(config.encryptionKeyFile)
      : undefined;
  const write = writeBytes ? toKey(writeBytes) : undefined;
  const read = new Map<string, Key>();
  for (const k of [...(write ? [write] : []), ...config.decryptionKeys.map((b) => toKey(Buffer.from(b, 'base64')))]) read.set(k.id, k);
  ring = { write, read };
  keyrings.set(config, ring);
  return ring;
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(index, 8);
  return n;
}

function aad(header: Buffer, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail[4] = final ? 1 : 0;
  return Buffer.concat([header, tail]);
}

/** Encrypts a byte stream into the chunked format. */
export class EncryptStream extends Transform {
  private readonly header: Buffer;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;

  constructor(
    private readonly key: Key,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {
    super();
    const size = Buffer.alloc(4);
    size.writeUInt32BE(chunkBytes);
    this.header = Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), randomBytes(8), size]);
    this.push(this.header);
  }

  private seal(plain: Buffer, final: boolean): Buffer {
    const prefix = this.header.subarray(MAGIC.length + 8, MAGIC.length + 16);
    const cipher = createCipheriv('aes-256-gcm', this.key.bytes, nonce(prefix, this.index));
    cipher.setAAD(aad(this.header, this.index, final));
    const out = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    this.index++;
    return out;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep at least one byte back: the last chunk must be sealed as final, and only the end of
    // the input says which one that is.
    while (this.pendingBytes > this.chunkBytes) {
      const all = Buffer.concat(this.pending);
      this.push(this.seal(all.subarray(0, this.chunkBytes), false));
      const rest = all.subarray(this.chunkBytes);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.push(this.seal(Buffer.concat(this.pending), true));
    this.pending = [];
    done();
  }
}

/** Reads the key id from the start of an encrypted file's bytes, or undefined if it is not one. */
export function headerKeyId(head: Buffer): string | undefined {
  if (head.length < HEADER_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  return head.subarray(MAGIC.length, MAGIC.length + 8).toString('hex');
}

/** Decrypts the chunked format, refusing the first chunk whose tag does not match. */
export class DecryptStream extends Transform {
  private header: Buffer | undefined;
  private key: Key | undefined;
  private chunkBytes = 0;
  private buffered: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partBytes = 0;
  private index = 0;

  constructor(private readonly ring: Keyring) {
    super();
  }

  private open(record: Buffer, final: boolean): Buffer {
    const header = this.header!;
    const prefix = header.subarray(MAGIC.length + 8, MAGIC.length + 16);
    const decipher = createDecipheriv('aes-256-gcm', this.key!.bytes, nonce(prefix, this.index));
    decipher.setAAD(aad(header, this.index, final));
    decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
    try {
      const out = Buffer.concat([decipher.update(record.subarray(0, record.length - TAG_BYTES)), decipher.final()]);
      this.index++;
      return out;
    } catch {
      throw new KeyError('decryption_failed', `chunk ${this.index} failed authentication: the file is damaged, truncated or was altered`);
    }
  }

  private readHeader(): boolean {
    if (this.header) return true;
    if (this.buffered.length < HEADER_BYTES) return false;
    const header = this.buffered.subarray(0, HEADER_BYTES);
    const id = headerKeyId(header);
    if (!id) throw new KeyError('not_encrypted', 'the file is not in the encrypted backup format');
    const key = this.ring.read.get(id);
    if (!key) {
      throw new KeyError(
        'key_unavailable',
        this.ring.read.size
          ? `the backup was encrypted with key ${id}, which is not configured (BACKUP_ENCRYPTION_KEY or BACKUP_DECRYPTION_KEYS)`
          : `the backup is encrypted (key ${id}) and no key is configured (BACKUP_ENCRYPTION_KEY)`,
      );
    }
    const chunkBytes = header.readUInt32BE(MAGIC.length + 16);
    // The header is only authenticated with the first chunk: bound what it can make us buffer.
    if (chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES)
      throw new KeyError('decryption_failed', `the encrypted file's header is damaged (chunk size ${chunkBytes})`);
    this.header = Buffer.from(header);
    this.key = key;
    this.chunkBytes = chunkBytes;
    this.buffered = this.buffered.subarray(HEADER_BYTES);
    return true;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      // Collect small reads and join them once a whole record is there, not on every read.
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      // A full record followed by more bytes cannot be the last one: wait until there is more.
      if (this.header && this.buffered.length + this.partBytes <= this.chunkBytes + TAG_BYTES) return done();
      this.buffered = Buffer.concat([this.buffered, ...this.parts]);
      this.parts = [];
      this.partBytes = 0;
      if (!this.readHeader()) return done();
      const record = this.chunkBytes + TAG_BYTES;
      while (this.buffered.length > record) {
        this.push(this.open(this.buffered.subarray(0, record), false));
        this.buffered = this.buffered.subarray(record);
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.buffered = Buffer.concat([this.buffered, ...this.parts]);
      this.parts = [];
      if (!this.readHeader()) throw new KeyError('decryption_failed', 'the encrypted file is truncated (incomplete header)');
      if (this.buffered.length < TAG_BYTES) throw new KeyError('decryption_failed', 'the encrypted file is truncated');
      this.push(this.open(this.buffered, true));
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

export interface Sealed {
  keyId: string;
  iv: string;
  data: string;
  tag: string;
}

/** Encrypts a small JSON value (a manifest's details) with the write key. */
export function sealJson(key: Key, value: unknown): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.bytes, iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return { keyId: key.id, iv: iv.toString('base64'), data: data.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** The value of `sealJson`, or undefined when its key is not configured or it does not authenticate. */
export function openJson<T>(ring: Keyring, sealed: Sealed): T | undefined {
  const key = ring.read.get(sealed.keyId);
  if (!key) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(sealed.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    const text = Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
