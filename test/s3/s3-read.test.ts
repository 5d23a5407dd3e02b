/**
 * S3Storage.read and readRange against a real S3-protocol server (s3rver) behind a proxy that
 * records each request (src/shared/storage/s3-read.ts): `readRange` is one ranged GET whose
 * answer is cut at the object's end; a missing object or bucket fails `read` with the words of a
 * plain GET (there is no HEAD before it); a server that ignores Range has its whole answer
 * passed on; the first part's answer, which `read` hands to the ranged download, is asked again
 * from the byte it reached when it breaks off, with If-Match. An empty object is read in
 * test/s3/s3-second-server.test.ts: s3rver answers a Range of one with a Content-Length of 1 and no
 * byte (the client waits, then gives up); S3 and fauxqs answer 416.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWNLOAD_PART_SIZE } from '../../src/shared/storage/s3-download.js';
import { S3Storage } from '../../src/shared/storage/s3.js';
import { StorageError } from '../../src/shared/storage/storage.js';
import { setProcessEnv } from '../helpers/env.js';
import { S3_CREDENTIALS_ENV, S3Server } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const PREFIX = 'read';
const BIG = 20 * MiB;

let s3: S3Server;
let dir: string;
let big: { file: string; bytes: Buffer; sha256: string };
let restoreEnv: (() => void) | undefined;

const storage = () => s3.storage(PREFIX);
const key = (name: string) => `${PREFIX}/${name}`;
const getsOf = (name: string, lines: string[]) => lines.filter((l) => l.split('?')[0] === `GET /${s3.bucket}/${key(name)}`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The SDK client an S3Storage sends with, to put a middleware on. */
const clientOf = (target: S3Storage) => (target as unknown as { client(): Promise<S3Client> }).client();

function randomFile(name: string, size: number): { file: string; bytes: Buffer; sha256: string } {
  const file = path.join(dir, name);
  const bytes = randomBytes(size);
  fs.writeFileSync(file, bytes);
  return { file, bytes, sha256: sha256(bytes) };
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  restoreEnv = setProcessEnv(S3_CREDENTIALS_ENV);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-s3-read-'));
  s3 = await S3Server.start({ record: true });
  big = randomFile('big.bin', BIG);
  await storage().put(big.file, 'big.bin', big.sha256);
});

afterAll(async () => {
  await s3?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
  restoreEnv?.();
});

describe('S3Storage.read without a HEAD, and readRange', () => {
  it('readRange is one ranged GET: the bytes asked for, cut at the end of the object, and its size', async () => {
    const bytes = big.bytes;
    const from = s3.requests.length;
    const head = await storage().readRange('big.bin', 0, 64 * 1024 - 1);
    expect(head.size).toBe(BIG);
    expect(head.bytes.equals(bytes.subarray(0, 64 * 1024))).toBe(true);
    const tail = await storage().readRange('big.bin', BIG - 100, BIG + 5000);
    expect(tail.bytes.equals(bytes.subarray(BIG - 100))).toBe(true);
    const seen = s3.requests.slice(from);
    expect(getsOf('big.bin', seen)).toHaveLength(2);
    expect(seen).toHaveLength(2);
  });

  it('a missing object or bucket fails the read with the same words as a plain GET', async () => {
    const missing = storage().read('no-such.bin');
    await expect(missing).rejects.toThrow(StorageError);
    await expect(missing).rejects.toThrow(/NoSuchKey .*\(while reading no-such\.bin\)$/);
    const other = s3.storage(PREFIX, { bucket: 'no-such-bucket' });
    await expect(other.read('big.bin')).rejects.toThrow(/^bucket no-such-bucket does not exist \(while reading big\.bin\)$/);
    await expect(storage().readRange('no-such.bin', 0, 10)).rejects.toThrow(/NoSuchKey/);
  });

  it('a server that ignores Range: read() passes on its whole answer, readRange() takes the bytes asked for', async () => {
    const target = storage();
    const client = await clientOf(target);
    client.middlewareStack.add(
      (next) => async (args) => {
        delete (args.request as { headers: Record<string, string> }).headers.range;
        return next(args);
      },
      { step: 'build' },
    );
    const from = s3.requests.length;
    expect(sha256(await drain(await target.read('big.bin')))).toBe(big.sha256);
    const piece = await target.readRange('big.bin', 10, 99);
    expect(piece.bytes.equals(big.bytes.subarray(10, 100))).toBe(true);
    expect(piece.size).toBe(BIG);
    expect(s3.requests.slice(from)).toHaveLength(2);
  });

  it("read(): the first part's answer cut short is asked again from the byte it reached, with If-Match", async () => {
    const target = storage();
    const client = await clientOf(target);
    const requested: { range?: string; ifMatch?: string }[] = [];
    let cut = true;
    client.middlewareStack.add(
      (next) => async (args) => {
        const h = (args.request as { headers: Record<string, string> }).headers;
        requested.push({ range: h.range, ifMatch: h['if-match'] });
        const result = await next(args);
        if (!cut || h.range !== `bytes=0-${DOWNLOAD_PART_SIZE - 1}`) return result;
        cut = false;
        const output = result.output as { Body: Readable };
        const body = output.Body;
        output.Body = Readable.from(
          (async function* () {
            let seen = 0;
            for await (const chunk of body as AsyncIterable<Buffer>) {
              if (seen + chunk.length >= 3 * MiB) {
                yield chunk.subarray(0, 3 * MiB - seen);
                body.destroy();
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
    expect(sha256(await drain(await target.read('big.bin')))).toBe(big.sha256);
    const { ETag: etag } = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key('big.bin') }));
    expect(requested[0]).toEqual({ range: `bytes=0-${DOWNLOAD_PART_SIZE - 1}`, ifMatch: undefined });
    expect(requested).toContainEqual({ range: `bytes=${3 * MiB}-${DOWNLOAD_PART_SIZE - 1}`, ifMatch: etag });
    expect(requested).toHaveLength(Math.ceil(BIG / DOWNLOAD_PART_SIZE) + 1);
  });
});
