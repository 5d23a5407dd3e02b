import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { DOWNLOAD_PART_SIZE, downloadObject } from './s3-download.js';
import { StorageError } from './storage.js';

/** One object of a bucket to read. */
export interface ObjectRequest {
  client: S3Client;
  bucket: string;
  key: string;
  signal?: AbortSignal;
  /** What the returned stream fails with for an error: the caller's wording. */
  explain?: (err: unknown) => Error;
}

const where = (req: ObjectRequest) => `s3://${req.bucket}/${req.key}`;

/** `bytes a-b/size` as numbers; undefined for anything else (an unsatisfiable range, no header). */
function contentRange(value: string | undefined): { start: number; end: number; size: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) } : undefined;
}

/** 416: a range past the object's end (every range of an empty object, on S3). */
const unsatisfiable = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416 || (err as Error).name === 'InvalidRange';

/**
 * The object as a stream, from one GET of its first part (`bytes=0-(DOWNLOAD_PART_SIZE - 1)`),
 * whose Content-Range gives the object's size and whose ETag names it: an object of one part is
 * that answer's body; a larger one goes on in ranged GETs (`downloadObject`, If-Match on that
 * ETag) that read this body as their first part. A server that ignores Range answers with the
 * whole object (no Content-Range), passed on as it is. An empty object, whose range S3 cannot
 * satisfy (416), is asked for again with a plain GET. A missing object or bucket fails the GET
 * itself, as a plain GET would.
 */
export async function readObject(req: ObjectRequest): Promise<Readable> {
  const { client, bucket, key, signal } = req;
  const part = DOWNLOAD_PART_SIZE;
  let res: GetObjectCommandOutput;
  try {
    res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${part - 1}` }), { abortSignal: signal });
  } catch (err) {
    if (!unsatisfiable(err)) throw err;
    res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  }
  const body = res.Body as Readable | undefined;
  if (!body) throw new StorageError(`${where(req)} has no body`);
  if (res.ContentRange === undefined) return body;
  const range = contentRange(res.ContentRange);
  if (range?.size === 0) {
    body.destroy();
    return Readable.from([]);
  }
  const size = range?.size ?? 0;
  const length = Math.min(size, part);
  if (!range || range.start !== 0 || range.end !== length - 1 || (res.ContentLength !== undefined && res.ContentLength !== length)) {
    body.destroy();
    throw new StorageError(`${where(req)} answered bytes=0-${part - 1} with ${res.ContentRange} (${res.ContentLength} bytes)`);
  }
  if (size <= part) return body;
  return downloadObject({ client, bucket, key, size, etag: res.ETag, first: body, signal, explain: req.explain });
}

/**
 * Bytes `start` to `end` (inclusive; fewer when the object ends before) in one ranged GET, and
 * the object's size. The answer's Content-Range must be the range asked for, cut at the object's
 * end, and its body that long. A server that ignores Range answers with the whole object: its
 * first `end + 1` bytes are read, the rest is not.
 */
export async function readObjectRange(req: ObjectRequest, start: number, end: number): Promise<{ bytes: Buffer; size: number }> {
  const { client, bucket, key, signal } = req;
  const asked = `bytes=${start}-${end}`;
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: asked }), { abortSignal: signal });
  const body = res.Body as Readable | undefined;
  if (!body) throw new StorageError(`${where(req)} has no body`);
  if (res.ContentRange === undefined) {
    const whole = await take(body, end + 1);
    return { bytes: whole.subarray(start), size: res.ContentLength ?? whole.length };
  }
  const range = contentRange(res.ContentRange);
  const size = range?.size ?? 0;
  const length = Math.min(end + 1, size) - start;
  if (!range || range.start !== start || range.end !== start + length - 1) {
    body.destroy();
    throw new StorageError(`${where(req)} answered ${asked} with ${res.ContentRange}`);
  }
  const bytes = await take(body, length + 1);
  if (bytes.length !== length) throw new StorageError(`${where(req)} answered ${asked} with ${bytes.length} bytes, not ${length}`);
  return { bytes, size };
}

/** The body's bytes up to `limit`; the rest of it is not read. */
async function take(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= limit) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, limit);
}
