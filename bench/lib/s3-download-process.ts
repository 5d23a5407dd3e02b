/**
 * One download from the bucket in a process of its own, for its time and peak memory:
 * `node --import tsx s3-download-process.ts plain|parallel|file|baseline NAME [OUT]` with
 * BACKUP_MIRROR_URL and the AWS variables set. Every mode first looks the object up (one HEAD,
 * which loads the client and opens a connection); then `plain` drains one GetObject to /dev/null,
 * `parallel` drains `S3Storage.read` to /dev/null, `file` writes `S3Storage.read` to OUT and
 * fsyncs it, `baseline` stops there. Prints one JSON line: `{"ms":…,"bytes":…,"vmHwmKb":…,
 * "arrayBuffersPeak":…,"arrayBuffersBase":…}`; VmHWM is read from /proc/self/status at the end.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3Storage } from '../../src/shared/storage/s3.js';

const [mode, name, out] = process.argv.slice(2);
if (!['plain', 'parallel', 'file', 'baseline'].includes(mode ?? '') || !name || (mode === 'file' && !out)) {
  throw new Error('usage: s3-download-process.ts plain|parallel|file|baseline NAME [OUT]');
}
const url = process.env.BACKUP_MIRROR_URL;
if (!url) throw new Error('BACKUP_MIRROR_URL is not set');

const mirror = new S3Storage('mirror', url, {
  region: process.env.AWS_REGION,
  endpoint: process.env.AWS_ENDPOINT_URL_S3,
  forcePathStyle: true,
  timeoutMs: 60_000,
});
const stat = await mirror.stat(name);
if (!stat) throw new Error(`${mirror.location}/${name} does not exist`);

/** Counts what passes and drops it. */
let bytes = 0;
const count = async function* (source: AsyncIterable<Buffer>) {
  for await (const chunk of source) {
    bytes += chunk.length;
    yield chunk;
  }
};

const arrayBuffersBase = process.memoryUsage().arrayBuffers;
let arrayBuffersPeak = arrayBuffersBase;
const sample = () => (arrayBuffersPeak = Math.max(arrayBuffersPeak, process.memoryUsage().arrayBuffers));
const timer = setInterval(sample, 10);
const started = performance.now();
if (mode === 'plain') {
  // The same client as `read` (its connections, its retries), reached past the private modifier on purpose.
  const client: S3Client = await mirror['client']();
  const res = await client.send(new GetObjectCommand({ Bucket: mirror.bucket, Key: mirror.prefix ? `${mirror.prefix}/${name}` : name }));
  await pipeline(res.Body as Readable, count, fs.createWriteStream('/dev/null'));
} else if (mode === 'parallel') {
  await pipeline(await mirror.read(name), count, fs.createWriteStream('/dev/null'));
} else if (mode === 'file') {
  await pipeline(await mirror.read(name), count, fs.createWriteStream(out!, { mode: 0o600 }));
  // fsync flushes the file's pages whichever descriptor asks.
  const handle = await fs.promises.open(out!, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
const ms = performance.now() - started;
sample();
clearInterval(timer);
if (mode !== 'baseline' && bytes !== stat.size) throw new Error(`read ${bytes} bytes of ${stat.size}`);
const status = fs.readFileSync('/proc/self/status', 'utf8');
const vmHwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
process.stdout.write(`${JSON.stringify({ ms, bytes, vmHwmKb, arrayBuffersPeak, arrayBuffersBase })}\n`);
// The SDK's kept-alive sockets would hold the loop for a while.
process.exit(0);
