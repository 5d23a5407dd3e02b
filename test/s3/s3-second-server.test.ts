/**
 * S3Storage against a second S3-protocol server, fauxqs 1.x (test/helpers/s3.ts, kind fauxqs), written
 * apart from s3rver, which the other S3 tests use. Where the two differ:
 * - Neither checks `x-amz-checksum-sha256` on PutObject or UploadPart, nor reports a checksum on
 *   HeadObject with ChecksumMode: put() always falls back to reading the object back.
 * - fauxqs 1.x parses CompleteMultipartUpload only when each Part's PartNumber and ETag are
 *   adjacent; the parts' ChecksumSHA256 that S3Storage sends stands between them, so it finds no
 *   part and stores an EMPTY object. s3rver joins the parts. put() catches it by the size.
 * - A multipart object's ETag: `md5(part md5s)-N` on fauxqs (as on AWS), a plain MD5 on s3rver.
 * - ListObjectsV2 pages: fauxqs pages; s3rver 3.7 answers 500 to every truncated listing (its
 *   continuation token is DES-encrypted, which OpenSSL 3 lacks). With a delimiter both return
 *   the same Contents and CommonPrefixes; KeyCount counts the prefixes on fauxqs (as AWS does),
 *   not on s3rver.
 * - Missing keys: the same on both (GET 404 NoSuchKey, HEAD bare 404, DELETE 204).
 * - A Range GET of an empty object: 416 InvalidRange on fauxqs, as on S3; s3rver answers 206 with
 *   Content-Length 1 and sends no byte.
 * - fauxqs checks no signature; objects live in its memory, so a restart empties the bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/shared/runtime/config.js';
import { openStorage } from '../../src/shared/storage/registry.js';
import { PART_SIZE, S3Storage } from '../../src/shared/storage/s3.js';
import { setProcessEnv } from '../helpers/env.js';
import { S3Server } from '../helpers/s3.js';

const PREFIX = 'workstation';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-s3-second-'));
let restoreEnv: (() => void) | undefined;
let s3: S3Server;
let config: Config;
let storage: S3Storage;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A local file of `size` random bytes. */
function file(name: string, size: number): { path: string; bytes: Buffer; sha256: string } {
  const bytes = randomBytes(size);
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return { path: p, bytes, sha256: sha256(bytes) };
}

async function readAll(name: string, from: S3Storage = storage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await from.read(name)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function open(url: string): S3Storage {
  const storage = openStorage('mirror', url, config);
  expect(storage).toBeInstanceOf(S3Storage);
  return storage as S3Storage;
}

beforeAll(async () => {
  s3 = await S3Server.start({ kind: 'fauxqs' });
  const env = s3.env(PREFIX);
  // The SDK takes its credentials from the process's environment, as the services do.
  restoreEnv = setProcessEnv({
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY!,
    AWS_REGION: env.AWS_REGION!,
  });
  config = parseConfig({ ...env, BACKUP_DIR: path.join(dir, 'backups'), BACKUP_MIRROR_TIMEOUT: '10000' });
  storage = open(config.mirrorUrl!);
});

afterAll(async () => {
  await s3?.cleanup();
  restoreEnv?.();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('S3Storage on a second S3 server (fauxqs)', () => {
  it('puts a small file in one PutObject and reads it back byte-exact; stat, sha256, a second put is a no-op', async () => {
    const small = file('small.db', 4321);
    await storage.put(small.path, 'small.db', small.sha256);
    expect(await s3.keys(`${PREFIX}/`)).toEqual([`${PREFIX}/small.db`]);
    expect(await s3.sha256(`${PREFIX}/small.db`)).toBe(small.sha256);
    expect((await readAll('small.db')).equals(small.bytes)).toBe(true);
    expect(await storage.stat('small.db')).toEqual({ size: 4321 });
    expect(await storage.sha256('small.db')).toBe(small.sha256);
    await storage.put(small.path, 'small.db', small.sha256);
    await expect(storage.put(file('other.db', 10).path, 'small.db', 'f'.repeat(64))).rejects.toThrow(
      /already exists with different contents/,
    );
  });

  it('fauxqs 1.x stores a multipart upload EMPTY when CompleteMultipartUpload lists part checksums: put() sees 0 bytes, refuses the copy and removes it', async () => {
    const big = file('big.db', 2 * PART_SIZE + 12_345);
    await expect(storage.put(big.path, 'big.db', big.sha256)).rejects.toThrow(`has 0 bytes, expected ${big.bytes.length}`);
    expect(await storage.stat('big.db')).toBeNull();
    expect(await s3.exists(`${PREFIX}/big.db`)).toBe(false);
  });

  it('reads an object over 8 MiB back byte-exact, and a Range GET returns exactly the bytes asked', async () => {
    // One PutObject of the test's own (fauxqs takes at most 11 MiB a request): S3Storage's
    // multipart upload does not reach this server intact, see above.
    const bytes = randomBytes(PART_SIZE + 1024 * 1024 + 7);
    const key = `${PREFIX}/large.db`;
    await s3.overwrite(key, bytes);
    expect(await storage.stat('large.db')).toEqual({ size: bytes.length });
    expect((await readAll('large.db')).equals(bytes)).toBe(true);
    expect(await storage.sha256('large.db')).toBe(sha256(bytes));

    for (const [first, last] of [
      [100, 199],
      [PART_SIZE - 50, PART_SIZE + 49],
    ] as const) {
      const res = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key, Range: `bytes=${first}-${last}` }));
      expect(res.$metadata.httpStatusCode).toBe(206);
      expect(res.ContentRange).toBe(`bytes ${first}-${last}/${bytes.length}`);
      expect(Buffer.from(await res.Body!.transformToByteArray()).equals(bytes.subarray(first, last + 1))).toBe(true);
    }
    await storage.remove('large.db');
  });

  it('an empty object: put() checks it by its size, read() meets 416 on its first range and reads it with one plain GET', async () => {
    const empty = file('empty.db', 0);
    await storage.put(empty.path, 'empty.db', empty.sha256);
    const reader = open(config.mirrorUrl!);
    const ranges: (string | undefined)[] = [];
    const client = await (reader as unknown as { client(): Promise<S3Client> }).client();
    client.middlewareStack.add(
      (next) => async (args) => {
        ranges.push((args.request as { headers: Record<string, string> }).headers.range);
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    expect((await readAll('empty.db', reader)).length).toBe(0);
    expect(ranges).toEqual([`bytes=0-${PART_SIZE - 1}`, undefined]);
    await storage.remove('empty.db');
  });

  it('lists only the names right under its prefix (Delimiter /), writes and reads text, removes', async () => {
    await storage.putText('a.json', '{"a":1}');
    await storage.putText('b.json', '{"b":2}');
    // Beside the prefix's own objects: a deeper one, a sibling prefix, another prefix.
    await s3.overwrite(`${PREFIX}/sub/deeper.db`, 'x');
    await s3.overwrite(`${PREFIX}-sibling/c.json`, 'x');
    await s3.overwrite('other/d.json', 'x');

    expect((await storage.list()).sort()).toEqual(['a.json', 'b.json', 'small.db']);
    expect(await storage.getText('a.json')).toBe('{"a":1}');
    expect(await storage.getText('missing.json')).toBeUndefined();
    expect(await storage.stat('missing.json')).toBeNull();

    await storage.remove('a.json');
    expect(await storage.stat('a.json')).toBeNull();
    expect(await storage.getText('a.json')).toBeUndefined();
    expect((await storage.list()).sort()).toEqual(['b.json', 'small.db']);
    // A missing key: DELETE answers 204, as S3 does.
    await storage.remove('a.json');
  });

  it('list() follows continuation tokens past 1,000 keys (s3rver 3.7 fails any truncated ListObjectsV2)', async () => {
    const many = open(`s3://${s3.bucket}/many`);
    const names = Array.from({ length: 1_005 }, (_, i) => `n${String(i).padStart(4, '0')}.json`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map((n) => s3.overwrite(`many/${n}`, n)));
    }
    expect((await many.list()).sort()).toEqual(names);
  });

  it('probe(): the bucket is reachable; a missing bucket is named', async () => {
    expect(await storage.probe()).toEqual({ ok: true, detail: 'reachable' });
    expect(await open('s3://no-such-bucket/x').probe()).toEqual({ ok: false, detail: 'bucket no-such-bucket does not exist' });
  });

  it('fauxqs does NOT check x-amz-checksum-sha256 (s3rver neither): a PutObject with a wrong digest is stored as sent, and HeadObject reports no checksum', async () => {
    const body = Buffer.from('the bytes sent');
    const wrong = createHash('sha256').update('other bytes').digest('base64');
    const key = `${PREFIX}/wrong-digest.json`;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ChecksumSHA256: wrong }));
    expect(await s3.bytes(key)).toEqual(body);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBeUndefined();
    expect(head.ContentLength).toBe(body.length);
    await s3.remove(key);
  });

  it('a stopped server is unreachable; restarted, it answers on the same port with the bucket empty', async () => {
    await s3.stop();
    const down = await storage.probe();
    expect(down.ok).toBe(false);
    expect(down.detail).toMatch(/unreachable \(ECONNREFUSED\)/);
    await s3.start();
    expect(await storage.probe()).toEqual({ ok: true, detail: 'reachable' });
    expect(await storage.list()).toEqual([]);
  });
});
