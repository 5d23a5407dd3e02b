import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { explainS3Error, NOT_FOUND, s3NameOf, type SdkError } from './s3-errors.js';
import { headProblem, uploadFile, type Uploaded } from './s3-upload.js';
import { checkName, StorageError, type BackupStorage, type CallOptions, type StorageRole } from './storage.js';

/** Where a bucket is and how to reach it; credentials come from the SDK's default chain. */
export interface S3Options {
  region: string | undefined;
  /** A custom endpoint (MinIO, R2, B2, Ceph): AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** Bound on connecting and on each wait for the server (BACKUP_MIRROR_TIMEOUT). */
  timeoutMs: number;
}

/**
 * Parts of a multipart upload: 8 MiB each, two in flight, so an upload holds about 16 MiB
 * however large the file; past 9,000 parts (about 70 GiB) the parts grow, as S3 allows 10,000.
 */
export const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
const partSizeFor = (size: number) => Math.max(PART_SIZE, Math.ceil(size / 9_000 / 2 ** 20) * 2 ** 20);

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/**
 * An S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Backblaze B2, Ceph) under a prefix:
 * `s3://bucket/prefix/<name>`. Uploads stream in parts with a SHA-256 per part that the server
 * checks; afterwards the stored object's checksum is compared with the catalog's, from what the
 * server reports for a whole-object checksum, or else by reading the object back. The SDK is
 * loaded on first use, so a service without a bucket never pays for it.
 */
export class S3Storage implements BackupStorage {
  readonly bucket: string;
  readonly prefix: string;
  #client: Promise<S3Client> | undefined;

  constructor(
    readonly role: StorageRole,
    url: string,
    private readonly options: S3Options,
  ) {
    const parsed = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!parsed) throw new StorageError(`invalid S3 URL ${JSON.stringify(url)}: expected s3://bucket/prefix`);
    this.bucket = parsed[1]!;
    this.prefix = parsed[2]!.replace(/^\/+|\/+$/g, '');
  }

  get location(): string {
    return `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
  }

  /** The endpoint requests go to, for messages. */
  get endpoint(): string {
    return this.options.endpoint ?? `https://s3.${this.options.region ?? 'us-east-1'}.amazonaws.com`;
  }

  private key(name: string): string {
    return this.prefix ? `${this.prefix}/${checkName(name)}` : checkName(name);
  }

  private client(): Promise<S3Client> {
    this.#client ??= (async () => {
      const [{ S3Client }, { NodeHttpHandler }] = await Promise.all([import('@aws-sdk/client-s3'), import('@smithy/node-http-handler')]);
      const { region, endpoint, forcePathStyle, timeoutMs } = this.options;
      return new S3Client({
        // A custom endpoint needs some region to sign with; MinIO and its kin accept us-east-1.
        region: region ?? (endpoint ? 'us-east-1' : undefined),
        endpoint,
        forcePathStyle,
        maxAttempts: 3,
        // socketTimeout is the bound on each wait for the server's next bytes; requestTimeout in
        // @smithy/node-http-handler 4 is the whole request's duration and only warns unless told
        // to throw, so a server that accepts connections and never answers would hang the copy.
        requestHandler: new NodeHttpHandler({ connectionTimeout: Math.min(timeoutMs, 10_000), socketTimeout: timeoutMs }),
      });
    })();
    return this.#client;
  }

  /** An SDK error as a sentence a person can act on (`s3-errors.ts`). */
  explain(err: unknown, doing: string): StorageError {
    const { bucket, location, endpoint } = this;
    return explainS3Error(err, doing, { bucket, location, endpoint, timeoutMs: this.options.timeoutMs });
  }

  private async send<T>(
    doing: string,
    opts: CallOptions | undefined,
    call: (client: S3Client, signal?: AbortSignal) => Promise<T>,
  ): Promise<T> {
    opts?.signal?.throwIfAborted();
    try {
      return await call(await this.client(), opts?.signal);
    } catch (err) {
      throw this.explain(err, doing);
    }
  }

  localPath(): undefined {
    return undefined;
  }

  async put(localFile: string, name: string, sha256: string, opts?: CallOptions): Promise<void> {
    const key = this.key(name);
    const existing = await this.stat(name, opts);
    if (existing) {
      if ((await this.sha256(name, opts)) === sha256) return;
      throw new StorageError(`${this.location}/${name} already exists with different contents`);
    }
    const size = (await fs.stat(localFile)).size;
    const uploaded = await this.send(`uploading ${name}`, opts, async (client, signal) =>
      uploadFile({
        client,
        bucket: this.bucket,
        key,
        file: localFile,
        partSize: partSizeFor(size),
        inFlight: PARTS_IN_FLIGHT,
        metadata: { sha256 },
        signal,
      }),
    );
    if (uploaded.sha256 !== sha256) {
      // The local file changed under the upload: what went up is not the backup the catalog knows.
      await this.remove(name).catch(() => undefined);
      throw new StorageError(`${localFile} read as SHA-256 ${uploaded.sha256} while uploading, expected ${sha256}`);
    }
    // What the bucket holds, not what was sent: a mismatch leaves no object that could pass for good.
    const problem = await this.checkStored(name, sha256, uploaded, size, opts);
    if (problem) {
      await this.remove(name).catch(() => undefined);
      throw new StorageError(`the copy at ${this.location}/${name} ${problem}`);
    }
  }

  /** Why the stored object is not the file, or undefined when it is. */
  private async checkStored(
    name: string,
    sha256: string,
    uploaded: Uploaded,
    size: number,
    opts?: CallOptions,
  ): Promise<string | undefined> {
    const key = this.key(name);
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    const head = await this.send(`checking ${name}`, opts, (client, abortSignal) =>
      client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal }),
    );
    const reported = headProblem(head, sha256, uploaded, size);
    if (reported !== null) return reported;
    const stored = await this.sha256(name, opts);
    return stored === sha256 ? undefined : `has SHA-256 ${stored}, expected ${sha256}`;
  }

  async putText(name: string, text: string, opts?: CallOptions): Promise<void> {
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const body = Buffer.from(text, 'utf8');
    await this.send(`writing ${name}`, opts, (client, abortSignal) =>
      client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(name),
          Body: body,
          ContentType: 'application/json',
          ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
        }),
        { abortSignal },
      ),
    );
  }

  async getText(name: string, opts?: CallOptions): Promise<string | undefined> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      return await this.send(`reading ${name}`, opts, async (client, abortSignal) => {
        const res = await client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name) }), { abortSignal });
        return res.Body!.transformToString('utf8');
      });
    } catch (err) {
      if (NOT_FOUND.has(s3NameOf(err))) return undefined;
      throw err;
    }
  }

  /** One GET of the first 8 MiB, then parallel ranged GETs for the rest (`s3-read.ts`): no HEAD first. */
  async read(name: string, opts?: CallOptions): Promise<Readable> {
    const { readObject } = await import('./s3-read.js');
    const doing = `reading ${name}`;
    return this.send(doing, opts, (client, signal) =>
      readObject({ client, bucket: this.bucket, key: this.key(name), signal, explain: (err) => this.explain(err, doing) }),
    );
  }

  /** One ranged GET, its Content-Range checked. */
  async readRange(name: string, start: number, end: number, opts?: CallOptions): Promise<{ bytes: Buffer; size: number }> {
    const { readObjectRange } = await import('./s3-read.js');
    return this.send(`reading ${name}`, opts, (client, signal) =>
      readObjectRange({ client, bucket: this.bucket, key: this.key(name), signal }, start, end),
    );
  }

  async stat(name: string, opts?: CallOptions): Promise<{ size: number } | null> {
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      const head = await this.send(`looking for ${name}`, opts, (client, abortSignal) =>
        client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }), { abortSignal }),
      );
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      if (NOT_FOUND.has(s3NameOf(err))) return null;
      throw err;
    }
  }

  async sha256(name: string, opts?: CallOptions): Promise<string> {
    const hash = createHash('sha256');
    const body = await this.read(name, opts);
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) hash.update(chunk);
    } catch (err) {
      throw this.explain(err, `reading ${name}`);
    }
    return hash.digest('hex');
  }

  async remove(name: string, opts?: CallOptions): Promise<void> {
    const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    await this.send(`deleting ${name}`, opts, (client, abortSignal) =>
      client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(name) }), { abortSignal }),
    );
  }

  async list(opts?: CallOptions): Promise<string[]> {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const names: string[] = [];
    const prefix = this.prefix ? `${this.prefix}/` : '';
    let token: string | undefined;
    do {
      const page = await this.send('listing the bucket', opts, (client, abortSignal) =>
        client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }), {
          abortSignal,
        }),
      );
      for (const o of page.Contents ?? []) if (o.Key) names.push(o.Key.slice(prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return names;
  }

  async putNew(localFile: string, name: string, sha256: string, opts?: CallOptions): Promise<void> {
    const size = (await fs.stat(localFile)).size;
    if (size > PART_SIZE) return this.put(localFile, name, sha256, opts);
    const body = await fs.readFile(localFile);
    const sent = createHash('sha256').update(body).digest('hex');
    if (sent !== sha256) throw new StorageError(`${localFile} read as SHA-256 ${sent}, expected ${sha256}`);
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    // S3 refuses a body whose SHA-256 is not this one; servers that ignore the checksum header
    // still check Content-MD5, and a single PUT's ETag is the MD5 of what was stored unless the
    // server encrypts with its own keys: no read-back needed.
    const md5 = createHash('md5').update(body).digest();
    const put = await this.send(`uploading ${name}`, opts, (client, abortSignal) =>
      client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(name),
          Body: body,
          ContentMD5: md5.toString('base64'),
          ChecksumSHA256: b64(sha256),
          Metadata: { sha256 },
        }),
        { abortSignal },
      ),
    );
    const etag = put.ETag?.replace(/"/g, '');
    if (etag && /^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString('hex') && !put.SSEKMSKeyId) {
      await this.remove(name).catch(() => undefined);
      throw new StorageError(`the copy at ${this.location}/${name} has MD5 ${etag}, expected ${md5.toString('hex')}`);
    }
  }

  /** Reaches the bucket with the configured credentials (HeadBucket): no object is written. */
  async probe(opts?: CallOptions): Promise<{ ok: boolean; detail: string }> {
    const { HeadBucketCommand } = await import('@aws-sdk/client-s3');
    try {
      await this.send('probing the bucket', opts, (client, abortSignal) =>
        client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal }),
      );
      return { ok: true, detail: 'reachable' };
    } catch (err) {
      const e = (err as Error & { cause?: unknown }).cause as SdkError | undefined;
      // HeadBucket has no body: a missing bucket is a bare 404.
      if (e?.$metadata?.httpStatusCode === 404) return { ok: false, detail: `bucket ${this.bucket} does not exist` };
      return { ok: false, detail: (err as Error).message };
    }
  }
}
