import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { waitUntil } from './env.js';
import { freePort } from './redis-server.js';
import { ROOT } from './root.js';

// The SDK warns once per process that its releases from 2027 need Node 22: noise in a green run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** fauxqs checks no signature: any key pair is accepted; these are what `env()` hands out. */
export const ALT_KEY_ID = 'FAUXQS';
export const ALT_SECRET = 'FAUXQS';

/** The child's program: fauxqs's app (S3, and SQS/SNS unused) on 127.0.0.1 and the given port. */
const SERVER = `
const { buildApp } = await import('fauxqs');
const app = buildApp({ logger: false });
await app.listen({ port: Number(process.argv[1]), host: '127.0.0.1' });
`;

export interface S3AltServerOptions {
  bucket?: string;
}

/**
 * A second S3-protocol server, independent of s3rver: fauxqs 1.x (Fastify), as a child process
 * on a free port of 127.0.0.1, so that behaviour differing between servers can be tested on both.
 * It keeps objects in the child's memory: there is no data directory, and `start()` after
 * `stop()` brings back the bucket empty. Known differences from s3rver are listed in
 * test/s3/s3-second-server.test.ts.
 */
export class S3AltServer {
  readonly client: S3Client;
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly bucket: string,
    readonly port: number,
  ) {
    this.client = new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: ALT_KEY_ID, secretAccessKey: ALT_SECRET },
      // As for s3rver: the test's own requests carry only the checksums it gives them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
  }

  static async start({ bucket = 'acc-bucket' }: S3AltServerOptions = {}): Promise<S3AltServer> {
    const server = new S3AltServer(bucket, await freePort());
    await server.start();
    return server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const child = this.child;
    return Boolean(child && child.exitCode === null && child.signalCode === null);
  }

  /** What the services need to use this bucket as their mirror (the same variables as S3Server's). */
  env(prefix = 'workstation'): Record<string, string> {
    return {
      BACKUP_MIRROR_URL: `s3://${this.bucket}/${prefix}`,
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: ALT_KEY_ID,
      AWS_SECRET_ACCESS_KEY: ALT_SECRET,
      S3_FORCE_PATH_STYLE: 'true',
    };
  }

  /** Starts the server (the bucket empty) on the same port. */
  async start(): Promise<void> {
    if (this.running) return;
    this.output = '';
    const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER, String(this.port)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const collect = (chunk: Buffer) => (this.output += chunk.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await waitUntil(
      'the second S3 server to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`fauxqs exited ${child.exitCode}: ${this.output}`);
        return (await fetch(`${this.endpoint}/health`)).ok;
      },
      20_000,
    );
    await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
  }

  /** SIGKILL: the server and every object it held are gone at once. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: connections are accepted (by the kernel) but nothing is answered until `resume()`. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server; it kept nothing on disk. */
  async cleanup(): Promise<void> {
    await this.stop();
    this.client.destroy();
  }

  // ---- the bucket, through the real protocol -------------------------------------------------

  /** Every key under `prefix` (`workstation/` lists that folder), sorted. */
  async keys(prefix = ''): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.push(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async stream(key: string): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return res.Body as Readable;
  }

  async bytes(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.stream(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** SHA-256 of an object's bytes, read as a stream. */
  async sha256(key: string): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of await this.stream(key)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  async exists(key: string): Promise<boolean> {
    return (await this.keys(key)).includes(key);
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Replaces an object's bytes (to damage a copy). One request: at most 11 MiB (fauxqs's body limit). */
  async overwrite(key: string, body: Buffer | string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }),
    );
  }
}
