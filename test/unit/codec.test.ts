import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStream, encodeFile } from '../../src/shared/codec/codec.js';
import { compressor, decompressor } from '../../src/shared/codec/compression.js';
import { COMPRESSION_MODES } from '../../src/shared/domain/backup-types.js';
import { DecryptStream, EncryptStream, keyId, type Keyring } from '../../src/shared/codec/encryption.js';

let dir: string;
let source: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-codec-'));
  source = path.join(dir, 'source.bin');
  // Compressible text with random stretches, across several zstd frames and encryption chunks.
  const parts: Buffer[] = [];
  for (let i = 0; i < 300; i++) parts.push(Buffer.from(`row ${i} `.repeat(2000)), randomBytes(4096));
  fs.writeFileSync(source, Buffer.concat(parts));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const keyOf = (bytes: Buffer) => ({ id: keyId(bytes), bytes });
const ringOf = (...keys: Buffer[]): Keyring => ({
  write: keys[0] ? keyOf(keys[0]) : undefined,
  read: new Map(keys.map((k) => [keyId(k), keyOf(k)])),
});

describe('encode and decode', () => {
  for (const compression of COMPRESSION_MODES) {
    for (const encrypted of [false, true]) {
      it(`round-trips ${compression}${encrypted ? ' + encryption' : ''} byte for byte`, async () => {
        const key = randomBytes(32);
        const packed = path.join(dir, `packed-${compression}-${encrypted}`);
        const back = `${packed}.out`;
        await encodeFile(source, packed, compression, encrypted ? keyOf(key) : undefined);
        await decodeStream(fs.createReadStream(packed), back, { compression, encryption: encrypted ? keyId(key) : null }, ringOf(key));
        expect(fs.readFileSync(back).equals(fs.readFileSync(source))).toBe(true);
        if (compression !== 'none') expect(fs.statSync(packed).size).toBeLessThan(fs.statSync(source).size);
        // Unencrypted files are readable by the standard tools, without this service.
        if (!encrypted && compression !== 'none') {
          const tool = compression === 'gzip' ? 'gzip' : 'zstd';
          const plain = execFileSync(tool, ['-d', '-c', packed], { maxBuffer: 1 << 28 });
          expect(plain.equals(fs.readFileSync(source))).toBe(true);
        }
      });
    }
  }
});

describe('zstd frames', () => {
  it('round-trips one buffer larger than the reader takes in a frame (a WAL segment comes as one)', async () => {
    // 20 MiB that barely compress, handed over as a single chunk: before the encoder cut frames
    // at 4 MiB of input, this became one frame longer than the reader's limit and was refused.
    const big = randomBytes(20 * 2 ** 20);
    const packed: Buffer[] = [];
    await pipeline(Readable.from([big]), compressor('zstd'), async (chunks: AsyncIterable<Buffer>) => {
      for await (const c of chunks) packed.push(c);
    });
    const back: Buffer[] = [];
    await pipeline(Readable.from([Buffer.concat(packed)]), decompressor('zstd'), async (chunks: AsyncIterable<Buffer>) => {
      for await (const c of chunks) back.push(c);
    });
    expect(Buffer.concat(back).equals(big)).toBe(true);
  });
});

async function encrypt(plain: Buffer, key: Buffer, chunk: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const enc = new EncryptStream(keyOf(key), chunk);
  enc.on('data', (b: Buffer) => out.push(b));
  await pipeline(Readable.from([plain]), enc);
  return Buffer.concat(out);
}

async function decrypt(cipher: Buffer, ring: Keyring): Promise<Buffer> {
  const out: Buffer[] = [];
  const dec = new DecryptStream(ring);
  dec.on('data', (b: Buffer) => out.push(b));
  await pipeline(Readable.from([cipher]), dec);
  return Buffer.concat(out);
}

describe('chunked AES-256-GCM', () => {
  const key = randomBytes(32);
  const plain = randomBytes(10 * 1024 + 100);
  const HEADER = 28;
  const RECORD = 1024 + 16;

  it('decrypts what it encrypted, with the write key or a rotated-out read key', async () => {
    const cipher = await encrypt(plain, key, 1024);
    expect(cipher.length).toBe(HEADER + 10 * RECORD + 100 + 16);
    expect((await decrypt(cipher, ringOf(key))).equals(plain)).toBe(true);
    // After rotation: a new write key, the old one kept for reading.
    expect((await decrypt(cipher, ringOf(randomBytes(32), key))).equals(plain)).toBe(true);
  });

  it('refuses a wrong key, a missing key, a flipped byte, a cut at a chunk boundary and swapped chunks', async () => {
    const cipher = await encrypt(plain, key, 1024);
    await expect(decrypt(cipher, ringOf(randomBytes(32)))).rejects.toThrow(/encrypted with key [0-9a-f]{16}, which is not configured/);
    await expect(decrypt(cipher, ringOf())).rejects.toThrow(/no key is configured/);

    const flipped = Buffer.from(cipher);
    flipped[HEADER + 3 * RECORD + 10]! ^= 1;
    await expect(decrypt(flipped, ringOf(key))).rejects.toThrow(/chunk 3 failed authentication/);

    const cut = cipher.subarray(0, HEADER + 4 * RECORD);
    await expect(decrypt(cut, ringOf(key))).rejects.toThrow(/chunk 3 failed authentication/);

    const swapped = Buffer.concat([
      cipher.subarray(0, HEADER),
      cipher.subarray(HEADER + RECORD, HEADER + 2 * RECORD),
      cipher.subarray(HEADER, HEADER + RECORD),
      cipher.subarray(HEADER + 2 * RECORD),
    ]);
    await expect(decrypt(swapped, ringOf(key))).rejects.toThrow(/chunk 0 failed authentication/);
  });
});
