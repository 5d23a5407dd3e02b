import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompressPackage } from '@mongodb-js/zstd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeStream, encodeFile } from '../../src/shared/codec/codec.js';
import { compressor, decompressor } from '../../src/shared/codec/compression.js';

const MiB = 2 ** 20;
let dir: string;
/** 20 MiB that compress about as a database does: several 4 MiB blocks, the last one short. */
let original: Buffer;
const noKeys = { write: undefined, read: new Map() };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-codec-blocks-'));
  const parts: Buffer[] = [];
  for (let i = 0, bytes = 0; bytes < 21 * MiB; i++) {
    parts.push(Buffer.from(`row ${i} step approve webhook `.repeat(200)), randomBytes(2_048));
    bytes += parts.at(-2)!.length + 2_048;
  }
  original = Buffer.concat(parts).subarray(0, 20 * MiB + 12_345);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function through(stage: Transform, input: Buffer, chunk = MiB): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunk) chunks.push(input.subarray(at, at + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), stage, async (parts: AsyncIterable<Buffer>) => {
    for await (const p of parts) out.push(p);
  });
  return Buffer.concat(out);
}

/** Decodes a file of the given mode the way a restore does, and returns the bytes. */
async function decodeFile(bytes: Buffer, compression: 'gzip' | 'zstd'): Promise<Buffer> {
  const packed = path.join(dir, `old.${compression}`);
  fs.writeFileSync(packed, bytes);
  const out = `${packed}.out`;
  const digest = await decodeStream(fs.createReadStream(packed), out, { compression, encryption: null }, noKeys);
  expect(digest).toBe(sha256(bytes));
  return fs.readFileSync(out);
}

describe('backups written before blocks were decoded in parallel', () => {
  it('reads a zstd backup written the old way (frames at the binding default level, each announced)', async () => {
    const frames: Buffer[] = [];
    for (let at = 0; at < original.length; at += 4 * MiB) {
      const frame = await zstdCompressPackage(original.subarray(at, at + 4 * MiB), 1);
      const announce = Buffer.alloc(12);
      announce.writeUInt32LE(0x184d2a5b, 0);
      announce.writeUInt32LE(4, 4);
      announce.writeUInt32LE(frame.length, 8);
      frames.push(announce, frame);
    }
    expect((await decodeFile(Buffer.concat(frames), 'zstd')).equals(original)).toBe(true);
  });

  it('reads a gzip backup of members without lengths, as the old encoder wrote them', async () => {
    const members: Buffer[] = [];
    for (let at = 0; at < original.length; at += 4 * MiB) members.push(gzipSync(original.subarray(at, at + 4 * MiB), { level: 1 }));
    expect((await decodeFile(Buffer.concat(members), 'gzip')).equals(original)).toBe(true);
  });

  it('reads a single-member gzip backup written by the gzip tool', async () => {
    const source = path.join(dir, 'plain.bin');
    fs.writeFileSync(source, original);
    const bytes = execFileSync('gzip', ['-1', '-c', source], { maxBuffer: 64 * MiB });
    expect((await decodeFile(bytes, 'gzip')).equals(original)).toBe(true);
  });
});

describe('blocks written now', () => {
  it('gzip members announce their length in a WB extra field that gzip -d skips', async () => {
    const packed = await through(compressor('gzip'), original);
    let members = 0;
    for (let at = 0; at < packed.length; members++) {
      expect(packed.subarray(at, at + 4).equals(Buffer.from([0x1f, 0x8b, 8, 4]))).toBe(true);
      expect(packed.subarray(at + 12, at + 14).toString()).toBe('WB');
      at += packed.readUInt32LE(at + 16);
    }
    expect(members).toBe(6);
    const file = path.join(dir, 'new.gz');
    fs.writeFileSync(file, packed);
    expect(execFileSync('gzip', ['-d', '-c', file], { maxBuffer: 64 * MiB }).equals(original)).toBe(true);
  });

  for (const mode of ['zstd', 'gzip'] as const) {
    it(`${mode}: round-trips fed in small and odd-sized reads, and hashes the file as written and as read`, async () => {
      const source = path.join(dir, `src-${mode}.bin`);
      const packed = path.join(dir, `packed-${mode}`);
      fs.writeFileSync(source, original);
      const written = await encodeFile(source, packed, mode, undefined);
      const bytes = fs.readFileSync(packed);
      expect(written).toBe(sha256(bytes));
      expect((await through(decompressor(mode), bytes, 7_777)).equals(original)).toBe(true);
      expect((await through(compressor(mode), original, 65_536)).length).toBeLessThan(original.length / 2);
    });
  }
});

/** Frame/member boundaries of a packed buffer: [start, length] of each. */
function units(packed: Buffer, mode: 'zstd' | 'gzip'): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at < packed.length;) {
    const length = mode === 'zstd' ? 12 + packed.readUInt32LE(at + 8) : packed.readUInt32LE(at + 16);
    out.push([at, length]);
    at += length;
  }
  return out;
}

describe('damaged backups are refused, naming the block', () => {
  for (const mode of ['zstd', 'gzip'] as const) {
    it(`${mode}: a damaged block`, async () => {
      const packed = Buffer.from(await through(compressor(mode), original));
      const [start, length] = units(packed, mode)[1]!;
      // zstd: the frame's magic number; gzip: the member's CRC-32 in its trailer.
      const at = mode === 'zstd' ? start + 12 : start + length - 8;
      packed[at] = packed[at]! ^ 0xff;
      await expect(through(decompressor(mode), packed)).rejects.toThrow(
        mode === 'zstd' ? /zstd frame 1 is damaged/ : /gzip member 1 is damaged/,
      );
    });

    it(`${mode}: an impossible length announced`, async () => {
      const packed = Buffer.from(await through(compressor(mode), original));
      const [start] = units(packed, mode)[2]!;
      packed.writeUInt32LE(0x7fffffff, mode === 'zstd' ? start + 8 : start + 16);
      await expect(through(decompressor(mode), packed)).rejects.toThrow(/announce/);
    });

    it(`${mode}: a truncated file`, async () => {
      const packed = await through(compressor(mode), original);
      await expect(through(decompressor(mode), packed.subarray(0, packed.length - 100))).rejects.toThrow(/truncated/);
    });
  }
});

describe('memory stays bounded', () => {
  /** Feeds `total` bytes of `chunk`-sized reads into `stage` whose output nobody reads; returns how many it took. */
  async function takenWhileStalled(stage: Transform, chunks: Buffer[]): Promise<number> {
    let taken = 0;
    const source = Readable.from(
      (function* () {
        for (const c of chunks) {
          taken += c.length;
          yield c;
        }
      })(),
    );
    const stalled = new Writable({ highWaterMark: 1, write: () => undefined });
    void pipeline(source, stage, stalled).catch(() => undefined);
    let before = -1;
    while (taken !== before) {
      before = taken;
      await new Promise((r) => setTimeout(r, 300));
    }
    source.destroy();
    return taken;
  }

  // Random bytes: every block stays about 4 MiB after compression, the worst case for memory.
  const noise = () => Array.from({ length: 64 }, () => randomBytes(2 * MiB));

  for (const mode of ['zstd', 'gzip'] as const) {
    it(`${mode}: a stalled reader stops the encoder and the decoder after a few blocks, not the stream`, async () => {
      const input = noise();
      expect(await takenWhileStalled(compressor(mode), input)).toBeLessThan(48 * MiB);
      const packed = await through(compressor(mode), Buffer.concat(input));
      const chunks: Buffer[] = [];
      for (let at = 0; at < packed.length; at += 2 * MiB) chunks.push(packed.subarray(at, at + 2 * MiB));
      expect(await takenWhileStalled(decompressor(mode), chunks)).toBeLessThan(48 * MiB);
    }, 60_000);
  }
});
