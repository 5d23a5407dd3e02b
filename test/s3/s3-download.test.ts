/**
 * Reading a bucket's object in parallel ranged GETs (S3Storage.read, s3-download.ts) against a
 * real S3-protocol server (s3rver) behind a proxy that records each request: the bytes come back
 * exact and in order, one GET per part and no HEAD (one GET for an object smaller than a part),
 * every range asks for the object the first GET saw; an abort, a server that goes away or an
 * object replaced meanwhile fails the stream. (A slow reader's memory:
 * test/s3/s3-download-memory.test.ts; servers that ignore Range, missing objects, `readRange`:
 * test/s3/s3-read.test.ts.)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWNLOAD_PART_SIZE, downloadObject } from '../../src/shared/storage/s3-download.js';
import { StorageError } from '../../src/shared/storage/storage.js';
import { setProcessEnv } from '../helpers/env.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { S3_CREDENTIALS_ENV, S3_KEY_ID, S3_SECRET, S3Server } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const PREFIX = 'download';

let s3: S3Server;
let dir: string;
let restoreEnv: (() => void) | undefined;

/** A bucket target on `port` (the proxy's, or s3rver's own to keep the proxy's buffers out of this process's memory). */
const storage = (port = s3.port) => s3.storage(PREFIX, { port });

/** A file of random bytes and its SHA-256. */
const randomFile = (name: string, size: number) => writeRandomFile(path.join(dir, name), size);

const key = (name: string) => `${PREFIX}/${name}`;
const getsOf = (name: string, lines: string[]) => lines.filter((l) => l.split('?')[0] === `GET /${s3.bucket}/${key(name)}`);
const headsOf = (name: string, lines: string[]) => lines.filter((l) => l === `HEAD /${s3.bucket}/${key(name)}`);

/** Reads a stream to the end: its chunks, their length and SHA-256. */
async function drain(stream: Readable): Promise<{ sha256: string; length: number; chunks: Buffer[] }> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    chunks.push(chunk);
    length += chunk.length;
  }
  return { sha256: hash.digest('hex'), length, chunks };
}

/** Takes the first chunk, then waits for `meanwhile` before reading the rest. */
async function readAcross(stream: Readable, meanwhile: () => Promise<void>): Promise<number> {
  let length = 0;
  let first = true;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (first) {
      first = false;
      await meanwhile();
    }
  }
  return length;
}

const BIG = 50 * MiB;
let big: { file: string; sha256: string };

beforeAll(async () => {
  // The target's client takes its credentials from the SDK's default chain.
  restoreEnv = setProcessEnv(S3_CREDENTIALS_ENV);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-s3-download-'));
  s3 = await S3Server.start({ record: true });
  big = randomFile('big.bin', BIG);
  await storage().put(big.file, 'big.bin', big.sha256);
});

afterAll(async () => {
  await s3?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
  restoreEnv?.();
});

describe('S3Storage.read in parallel ranges', () => {
  it('reads a 50 MiB object back byte for byte, in ceil(size / part) ranged GETs and no HEAD', async () => {
    const from = s3.requests.length;
    const { chunks, length } = await drain(await storage().read('big.bin'));
    expect(length).toBe(BIG);
    expect(Buffer.concat(chunks).equals(fs.readFileSync(big.file))).toBe(true);
    const seen = s3.requests.slice(from);
    expect(headsOf('big.bin', seen)).toHaveLength(0);
    expect(getsOf('big.bin', seen)).toHaveLength(Math.ceil(BIG / DOWNLOAD_PART_SIZE));
    expect(seen).toHaveLength(Math.ceil(BIG / DOWNLOAD_PART_SIZE));
  });

  it('an object smaller than a part is one GET', async () => {
    const small = randomFile('small.bin', 3 * MiB + 17);
    await storage().put(small.file, 'small.bin', small.sha256);
    const from = s3.requests.length;
    const read = await drain(await storage().read('small.bin'));
    expect(read.sha256).toBe(small.sha256);
    const seen = s3.requests.slice(from);
    expect(headsOf('small.bin', seen)).toHaveLength(0);
    expect(getsOf('small.bin', seen)).toHaveLength(1);
    expect(seen).toHaveLength(1);
  });

  it('every range is sent with Range: bytes=a-b and If-Match: the ETag given', async () => {
    const headers: { range?: string; ifMatch?: string }[] = [];
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
    });
    client.middlewareStack.add(
      (next) => async (args) => {
        const h = (args.request as { headers: Record<string, string> }).headers;
        headers.push({ range: h.range, ifMatch: h['if-match'] });
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    try {
      const { ETag: etag } = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key('big.bin') }));
      expect(etag).toMatch(/^".+"$/);
      const partSize = 16 * MiB;
      const read = await drain(downloadObject({ client, bucket: s3.bucket, key: key('big.bin'), size: BIG, etag, partSize, inFlight: 2 }));
      expect(read.sha256).toBe(big.sha256);
      const expected = Array.from({ length: Math.ceil(BIG / partSize) }, (_, i) => ({
        range: `bytes=${i * partSize}-${Math.min(BIG, (i + 1) * partSize) - 1}`,
        ifMatch: etag,
      }));
      expect(headers.sort((a, b) => parseInt(a.range!.slice(6)) - parseInt(b.range!.slice(6)))).toEqual(expected);
    } finally {
      client.destroy();
    }
  });

  it('a range cut short (an error, or an early end) is asked again from the byte it reached; the bytes stay exact', async () => {
    const partSize = 8 * MiB;
    const requested: string[] = [];
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
      maxAttempts: 1,
    });
    // The first answers for parts 1 and 4 stop after 3 MiB: one with a reset, one as if complete.
    const cuts = new Map([
      [`bytes=${1 * partSize}-${2 * partSize - 1}`, 'reset'],
      [`bytes=${4 * partSize}-${5 * partSize - 1}`, 'end'],
    ]);
    client.middlewareStack.add(
      (next) => async (args) => {
        const range = (args.request as { headers: Record<string, string> }).headers.range ?? '';
        requested.push(range);
        const result = await next(args);
        const cut = cuts.get(range);
        if (!cut) return result;
        cuts.delete(range);
        const output = result.output as { Body: Readable };
        const body = output.Body;
        output.Body = Readable.from(
          (async function* () {
            let seen = 0;
            for await (const chunk of body as AsyncIterable<Buffer>) {
              const room = 3 * MiB - seen;
              if (chunk.length >= room) {
                yield chunk.subarray(0, room);
                if (cut === 'reset') throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
                return;
              }
              seen += chunk.length;
              yield chunk;
            }
          })(),
          { objectMode: false },
        );
        return result;
      },
      { step: 'deserialize', priority: 'high' },
    );
    try {
      const read = await drain(downloadObject({ client, bucket: s3.bucket, key: key('big.bin'), size: BIG, partSize }));
      expect(read.length).toBe(BIG);
      expect(read.sha256).toBe(big.sha256);
      const again = (part: number) => `bytes=${part * partSize + 3 * MiB}-${(part + 1) * partSize - 1}`;
      expect(requested).toContain(again(1));
      expect(requested).toContain(again(4));
      expect(requested).toHaveLength(Math.ceil(BIG / partSize) + 2);
    } finally {
      client.destroy();
    }
  });

  it('an object replaced while it is read fails the stream (ETag), not a mix of two objects', async () => {
    const other = randomFile('other.bin', BIG);
    const target = randomFile('replaced.bin', BIG);
    await storage().put(target.file, 'replaced.bin', target.sha256);
    const stream = await storage().read('replaced.bin');
    const read = readAcross(stream, async () => {
      // The ranges already started finish first: s3rver rewrites the file in place, and a GET
      // reading it meanwhile stops short and waits for its connection to close (about 6 s).
      await sleep(500);
      await s3.overwrite(key('replaced.bin'), fs.readFileSync(other.file));
    });
    await expect(read).rejects.toThrow(/changed while it was read/);
    await expect(read).rejects.toBeInstanceOf(StorageError);
  });

  it('an abort midway rejects with "reading … was cancelled", stops the requests, and leaves no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      const stream = await storage().read('big.bin', { signal: controller.signal });
      let length = 0;
      const read = (async () => {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          length += chunk.length;
          if (length >= 2 * DOWNLOAD_PART_SIZE) controller.abort();
        }
      })();
      await expect(read).rejects.toThrow(/reading big\.bin was cancelled/);
      expect(length).toBeLessThan(BIG);
      // Requests sent just before the abort may reach the proxy a moment after it.
      await sleep(200);
      const after = s3.requests.length;
      await sleep(1_000);
      expect(s3.requests.slice(after)).toEqual([]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('the server stopped mid-download fails the stream with an error, neither hanging nor ending short', async () => {
    const stream = await storage().read('big.bin');
    const started = Date.now();
    const read = readAcross(stream, () => s3.stop());
    try {
      await expect(read).rejects.toThrow(StorageError);
      await expect(read).rejects.toThrow(/\(while reading big\.bin\)$/);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await s3.start();
    }
  });
});
