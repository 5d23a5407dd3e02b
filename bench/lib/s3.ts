import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { ROOT } from './procs.js';

const S3RVER_BIN = path.join(ROOT, 'node_modules/s3rver/bin/s3rver.js');

/** s3rver's one account. */
const KEY_ID = 'S3RVER';
const SECRET = 'S3RVER';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * An S3-protocol server (s3rver) as a child process on 127.0.0.1, keeping its objects in `dir`
 * (on the disk the benchmark writes everything else to). Like every other method here it writes
 * through the page cache; unlike `cp` + `sync` it never fsyncs.
 */
export class S3rverProcess {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly dir: string,
    readonly bucket: string,
  ) {
    const collect = (c: Buffer) => (this.output = (this.output + c.toString()).slice(-4000));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
  }

  static async start(dir: string, bucket = 'acc-bucket'): Promise<S3rverProcess> {
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [S3RVER_BIN, '-d', dir, '-p', String(port), '-a', '127.0.0.1', '--silent', '--configure-bucket', bucket],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new S3rverProcess(child, port, dir, bucket);
    try {
      await server.ready(20_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The variables that make a service mirror to this bucket, under `prefix`. */
  env(prefix: string): Record<string, string> {
    return {
      BACKUP_MIRROR_URL: `s3://${this.bucket}/${prefix}`,
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
      S3_FORCE_PATH_STYLE: 'true',
    };
  }

  private async ready(timeoutMs: number): Promise<void> {
    const client = new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET },
      maxAttempts: 1,
    });
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (this.child.exitCode !== null) throw new Error(`s3rver exited ${this.child.exitCode}: ${this.output}`);
        try {
          await client.send(new HeadBucketCommand({ Bucket: this.bucket }));
          return;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`s3rver did not answer within ${timeoutMs} ms: ${this.output}`, { cause: err });
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      client.destroy();
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
