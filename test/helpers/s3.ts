import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3Storage } from '../../src/shared/storage/s3.js';
import { waitUntil } from './env.js';
import { freePort } from './redis-server.js';
import { ROOT } from './root.js';
import { RecordingProxy } from './s3-proxy.js';

const S3RVER_BIN = path.join(ROOT, 'node_modules/s3rver/bin/s3rver.js');

// The SDK warns once per process that its releases from 2027 need Node 22: noise in a green run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** s3rver's one account. */
export const S3_KEY_ID = 'S3RVER';
export const S3_SECRET = 'S3RVER';
/** fauxqs checks no signature: any key pair is accepted; these are what its `env()` hands out. */
const FAUXQS_KEY = 'FAUXQS';
/** fauxqs's program: its app (S3, and SQS/SNS unused) on 127.0.0.1 and the given port. */
const FAUXQS_SERVER = `
const { buildApp } = await import('fauxqs');
const app = buildApp({ logger: false });
await app.listen({ port: Number(process.argv[1]), host: '127.0.0.1' });
`;

/**
 * The S3-protocol servers the tests run, written apart from each other so that behaviour differing
 * between servers can be tested on both: s3rver 3.x (the one most tests use) keeps its objects in
 * a data directory of its own, so `stop()` then `start()` brings them back; fauxqs 1.x (Fastify)
 * keeps them in its memory, so a restart empties the bucket. Known differences are listed in
 * test/s3/s3-second-server.test.ts.
 */
export type S3ServerKind = 's3rver' | 'fauxqs';
/** s3rver's account as the SDK's default chain reads it from the environment (setProcessEnv, env.ts). */
export const S3_CREDENTIALS_ENV = { AWS_ACCESS_KEY_ID: S3_KEY_ID, AWS_SECRET_ACCESS_KEY: S3_SECRET };

export interface S3ServerOptions {
  /** Which server (s3rver by default). */
  kind?: S3ServerKind;
  bucket?: string;
  /** Put a recording proxy in front: services then talk to the proxy's port. */
  record?: boolean;
}

/**
 * An S3-protocol server (`kind`: s3rver, or fauxqs) as a child process on a fixed port: `stop()`
 * kills it (an outage, mid-upload too) and `start()` brings it back on the same port (s3rver: and
 * directory, objects included). The test inspects the bucket through the real protocol.
 */
export class S3Server {
  readonly client: S3Client;
  private child: ChildProcess | undefined;
  private output = '';
  private readonly proxy: RecordingProxy | undefined;

  private constructor(
    readonly kind: S3ServerKind,
    readonly bucket: string,
    /** s3rver's data directory. */
    readonly dir: string,
    /** Where s3rver itself listens. */
    readonly serverPort: number,
    proxyPort: number | undefined,
  ) {
    this.proxy = proxyPort === undefined ? undefined : new RecordingProxy(proxyPort, serverPort);
    this.client = new S3Client({
      endpoint: `http://127.0.0.1:${serverPort}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: this.account.id, secretAccessKey: this.account.secret },
      // s3rver knows neither the newer checksum headers nor aws-chunked trailers; on fauxqs too,
      // the test's own requests carry only the checksums it gives them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
  }

  static async start({ kind = 's3rver', bucket = 'acc-bucket', record = false }: S3ServerOptions = {}): Promise<S3Server> {
    const dir = kind === 's3rver' ? fs.mkdtempSync(path.join(os.tmpdir(), 'wb-s3rver-')) : '';
    const server = new S3Server(kind, bucket, dir, await freePort(), record ? await freePort() : undefined);
    await server.start();
    return server;
  }

  /** The account the services are given (s3rver's one account; fauxqs accepts any). */
  private get account(): { id: string; secret: string } {
    return this.kind === 's3rver' ? { id: S3_KEY_ID, secret: S3_SECRET } : { id: FAUXQS_KEY, secret: FAUXQS_KEY };
  }

  /** The port services are given: the proxy's when there is one. */
  get port(): number {
    return this.proxy?.port ?? this.serverPort;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const child = this.child;
    return Boolean(child && child.exitCode === null && child.signalCode === null);
  }

  /**
   * An S3Storage in the test's own process on `prefix` of the bucket, through the proxy when there
   * is one (`port`: another, such as s3rver's own). Its client takes its credentials from the
   * environment (S3_CREDENTIALS_ENV).
   */
  storage(prefix: string, { port = this.port, bucket = this.bucket }: { port?: number; bucket?: string } = {}): S3Storage {
    return new S3Storage('mirror', `s3://${bucket}/${prefix}`, {
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      timeoutMs: 10_000,
    });
  }

  /** What the services need to use this bucket as their mirror. */
  env(prefix = 'workstation'): Record<string, string> {
    return {
      BACKUP_MIRROR_URL: `s3://${this.bucket}/${prefix}`,
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: this.account.id,
      AWS_SECRET_ACCESS_KEY: this.account.secret,
      S3_FORCE_PATH_STYLE: 'true',
    };
  }

  /** Starts the server on its port: s3rver on its data directory, fauxqs with the bucket empty. */
  async start(): Promise<void> {
    if (this.running) return;
    this.output = '';
    const port = String(this.serverPort);
    const argv =
      this.kind === 's3rver'
        ? [S3RVER_BIN, '-d', this.dir, '-p', port, '-a', '127.0.0.1', '--silent', '--configure-bucket', this.bucket]
        : ['--input-type=module', '-e', FAUXQS_SERVER, port];
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer) => (this.output += chunk.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await waitUntil(
      `the S3 server (${this.kind}) to answer`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${this.kind} exited ${child.exitCode}: ${this.output}`);
        if (this.kind === 'fauxqs') return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
        return true;
      },
      20_000,
    );
    if (this.kind === 'fauxqs') await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    await this.proxy?.listen();
  }

  /** SIGKILL: the server is gone at once, whatever it was doing; the proxy stops listening too. */
  async stop(): Promise<void> {
    await this.proxy?.close();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * SIGSTOP: the server still accepts connections (the kernel does) but answers nothing, as a
   * hung or overloaded bucket does; `resume()` lets it go on.
   */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server and removes its data. */
  async cleanup(): Promise<void> {
    await this.stop();
    this.client.destroy();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- what the proxy saw --------------------------------------------------------------------

  /** `method url` of every request through the proxy, oldest first. */
  get requests(): string[] {
    if (!this.proxy) throw new Error('this S3 server was started without record: true');
    return this.proxy.requests;
  }

  /** From now on, PUTs whose `method url` line matches arrive with one byte of their body flipped (undefined: none). */
  corruptPuts(pattern: RegExp | undefined): void {
    this.proxy!.corruptPuts = pattern;
  }

  /** Resolves with the first request line matching `pattern` from now on (or already seen since `from`). */
  waitForRequest(pattern: RegExp, timeoutMs = 30_000, from = this.requests.length): Promise<string> {
    const proxy = this.proxy!;
    return new Promise((resolve, reject) => {
      const seen = proxy.requests.slice(from).find((l) => pattern.test(l));
      if (seen) return resolve(seen);
      const timer = setTimeout(() => {
        proxy.onRequest = undefined;
        reject(new Error(`no request matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      proxy.onRequest = (line) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        proxy.onRequest = undefined;
        resolve(line);
      };
    });
  }

  /** LIST requests (ListObjectsV2, or V1) on the bucket among `lines`. */
  lists(lines = this.requests): string[] {
    const bucket = new RegExp(`^GET /${this.bucket}/?(\\?(?![^ ]*uploadId)|$)`);
    return lines.filter((l) => bucket.test(l));
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

  async text(key: string): Promise<string> {
    return (await this.bytes(key)).toString('utf8');
  }

  /** SHA-256 of an object's bytes, read as a stream (backups can be hundreds of MB). */
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

  /** Replaces an object's bytes (to damage a copy). One request: on fauxqs at most 11 MiB (its body limit). */
  async overwrite(key: string, body: Buffer | string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }),
    );
  }
}
