import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';

/** What was sent: the file's SHA-256 and each part's, read in the same pass as the upload. */
export interface Uploaded {
  /** SHA-256 (hex) of the whole file as read for the upload. */
  sha256: string;
  /** Each part's SHA-256; one entry for a single PutObject. */
  partDigests: Buffer[];
  multipart: boolean;
}

export interface UploadRequest {
  client: S3Client;
  bucket: string;
  key: string;
  file: string;
  partSize: number;
  /** Parts uploading at once; each holds one buffer of `partSize`. */
  inFlight: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Uploads a file in parts, each read into one of `inFlight` buffers that are reused for the whole
 * upload (about `inFlight × partSize` of memory, whatever the file's size) and sent with its
 * SHA-256, which the server checks on arrival. A file that fits one part is one PutObject. A
 * multipart upload that fails or is cancelled is aborted, so no parts are left behind.
 *
 * Written on the S3 client's commands rather than `@aws-sdk/lib-storage`'s `Upload`: that one
 * joins a stream's chunks into a fresh copy for every part, which measured about 100 MiB above
 * the process's baseline while uploading 1 GiB (BENCHMARKS.md, "S3 mirror").
 */
export async function uploadFile(req: UploadRequest): Promise<Uploaded> {
  const s3 = await import('@aws-sdk/client-s3');
  const { client, bucket, key, partSize, signal } = req;
  const handle = await fs.open(req.file, 'r');
  const whole = createHash('sha256');
  const partDigests: Buffer[] = [];
  const buffers = Array.from({ length: Math.max(1, req.inFlight) }, () => Buffer.allocUnsafe(partSize));
  /** Reads the next part into `buffer`; its length, 0 at the end. */
  let offset = 0;
  const readPart = async (buffer: Buffer): Promise<number> => {
    let filled = 0;
    while (filled < partSize) {
      const { bytesRead } = await handle.read(buffer, filled, partSize - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    offset += filled;
    return filled;
  };
  const digest = (part: Buffer) => {
    whole.update(part);
    const d = createHash('sha256').update(part).digest();
    partDigests.push(d);
    return d.toString('base64');
  };
  try {
    const first = await readPart(buffers[0]!);
    const size = (await handle.stat()).size;
    if (first >= size) {
      const body = buffers[0]!.subarray(0, first);
      await client.send(
        new s3.PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ChecksumSHA256: digest(body), Metadata: req.metadata }),
        { abortSignal: signal },
      );
      return { sha256: whole.digest('hex'), partDigests, multipart: false };
    }
    const { UploadId } = await client.send(
      new s3.CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'SHA256', Metadata: req.metadata }),
      { abortSignal: signal },
    );
    try {
      const done: { PartNumber: number; ETag?: string; ChecksumSHA256?: string }[] = [];
      const running = new Map<number, Promise<void>>();
      let partNumber = 0;
      let length = first;
      let slot = 0;
      while (length > 0) {
        const number = ++partNumber;
        const body = buffers[slot]!.subarray(0, length);
        const checksum = digest(body);
        const sent = client
          .send(
            new s3.UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: number, Body: body, ChecksumSHA256: checksum }),
            {
              abortSignal: signal,
            },
          )
          .then((r) => void done.push({ PartNumber: number, ETag: r.ETag, ChecksumSHA256: r.ChecksumSHA256 ?? checksum }));
        // Awaited below; until then a failure must not count as unhandled.
        sent.catch(() => undefined);
        running.set(slot, sent);
        // The next buffer is free once the part it held has been sent.
        slot = (slot + 1) % buffers.length;
        await running.get(slot);
        running.delete(slot);
        length = await readPart(buffers[slot]!);
      }
      await Promise.all(running.values());
      done.sort((a, b) => a.PartNumber - b.PartNumber);
      await client.send(new s3.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: done } }), {
        abortSignal: signal,
      });
      return { sha256: whole.digest('hex'), partDigests, multipart: true };
    } catch (err) {
      await client.send(new s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
      throw err;
    }
  } finally {
    await handle.close();
  }
}

/** The checksum S3 reports for an object uploaded in these parts: SHA-256 of the parts' digests, `-<count>`. */
export const compositeOf = (partDigests: Buffer[]) =>
  `${createHash('sha256').update(Buffer.concat(partDigests)).digest('base64')}-${partDigests.length}`;

/**
 * What a HeadObject (ChecksumMode ENABLED) of an uploaded object tells of it against the file
 * sent: why it is not the file, undefined when it is, or null when the server reports no checksum
 * (then the object must be read back).
 */
export function headProblem(
  head: { ContentLength?: number; ChecksumSHA256?: string; ChecksumType?: string },
  sha256: string,
  uploaded: Uploaded,
  size: number,
): string | undefined | null {
  if (head.ContentLength !== size) return `has ${head.ContentLength} bytes, expected ${size}`;
  // Nothing to compare: the file sent was empty (its SHA-256 was checked as it was read).
  if (size === 0) return undefined;
  // A whole-object SHA-256 the server computed; a multipart upload's is a checksum of the parts' checksums (`…-N`).
  const reported = head.ChecksumSHA256;
  if (reported && !reported.includes('-') && head.ChecksumType !== 'COMPOSITE') {
    const hex = Buffer.from(reported, 'base64').toString('hex');
    return hex === sha256 ? undefined : `has SHA-256 ${hex}, expected ${sha256}`;
  }
  if (!reported?.includes('-')) return null;
  // The server checked each part's SHA-256 on arrival; its checksum of those checksums must be
  // the one of the parts sent, read in the same pass that hashed the file to the catalog's.
  const expected = compositeOf(uploaded.partDigests);
  return reported === expected ? undefined : `has part checksums ${reported}, expected ${expected}`;
}
