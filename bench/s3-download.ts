/**
 * Download from the bucket: one plain GetObject against `S3Storage.read`'s parallel ranged GETs,
 * on s3rver (127.0.0.1). Starts s3rver, uploads an object of random bytes, then times, in a fresh
 * process each, (a) one GetObject drained to /dev/null, (b) `S3Storage.read` drained to
 * /dev/null, (c) `S3Storage.read` written to a file and fsynced; prints medians, ratios to (a),
 * and each process's peak RSS and peak Buffer memory. Not part of `npm run bench` (minutes at 1 GiB).
 *
 *   node --import tsx bench/s3-download.ts [--size MiB, default 1024] [--runs N, default 3] [--dir DIR] [--keep]
 *   (npm script: "bench:s3-download": "node --import tsx bench/s3-download.ts")
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { DOWNLOAD_IN_FLIGHT, DOWNLOAD_PART_SIZE } from '../src/shared/storage/s3-download.js';
import { PART_SIZE, S3Storage } from '../src/shared/storage/s3.js';
import { uploadFile } from '../src/shared/storage/s3-upload.js';
import { describeMachine } from './lib/machine.js';
import { ROOT, runShell } from './lib/procs.js';
import { S3rverProcess } from './lib/s3.js';
import { median } from './lib/stats.js';
import { renderTable, type Row } from './lib/table.js';

const run = promisify(execFile);
const MiB = 2 ** 20;

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const sizeMiB = Number(values.size);
const runs = Number(values.runs);
if (!Number.isFinite(sizeMiB) || sizeMiB < 16) throw new Error(`--size must be a number of MiB ≥ 16, got ${values.size}`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number ≥ 1, got ${values.runs}`);
const size = Math.round(sizeMiB * MiB);

const SECTION = 'S3 download (s3rver on 127.0.0.1)';
const METHODS = {
  plain: '(a) one GetObject → /dev/null',
  parallel: `(b) S3Storage.read (${DOWNLOAD_IN_FLIGHT} × ${DOWNLOAD_PART_SIZE / MiB} MiB ranges) → /dev/null`,
  file: '(c) S3Storage.read → file + fsync',
} as const;
type Method = keyof typeof METHODS;
const NAME = 'object.bin';

interface Measured {
  ms: number;
  bytes: number;
  vmHwmKb: number;
  arrayBuffersPeak: number;
  arrayBuffersBase: number;
}

/** Random bytes written a few MiB at a time: nothing compresses, nothing is cached between methods by content. */
function randomFile(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; done += 4 * MiB) fs.writeSync(fd, randomBytes(Math.min(4 * MiB, size - done)));
  } finally {
    fs.closeSync(fd);
  }
}

async function child(env: Record<string, string>, mode: Method | 'baseline', out?: string): Promise<Measured> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/lib/s3-download-process.ts'), mode, NAME, ...(out ? [out] : [])],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 1_800_000 },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Measured;
}

/** Dirty pages of the previous method are written out before the next starts. */
async function flush(): Promise<void> {
  const r = await runShell('sync', [], 600_000);
  if (r.code !== 0) throw new Error(`sync failed: ${r.stderr}`);
}

// The SDK warns that its releases from 2027 need Node 22: noise in the benchmark's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const work = fs.mkdtempSync(path.join(path.resolve(values.dir ?? os.tmpdir()), 'wb-bench-s3-download-'));
const s3 = await S3rverProcess.start(path.join(work, 's3rver'));
const env: Record<string, string> = { ...s3.env('bench'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const progress = (line: string) => process.stderr.write(`${line}\n`);
// An interrupted run still stops its S3 server and removes its files.
process.once('SIGINT', () => {
  void s3.stop().finally(() => {
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
});
try {
  const source = path.join(work, 'source.bin');
  progress(`writing ${sizeMiB} MiB of random bytes and uploading them`);
  randomFile(source);
  // Credentials reach the SDK through its default chain, as in the service: this process's environment.
  Object.assign(process.env, env);
  const mirror = new S3Storage('mirror', `s3://${s3.bucket}/bench`, {
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    timeoutMs: 60_000,
  });
  const client: S3Client = await mirror['client']();
  await uploadFile({ client, bucket: mirror.bucket, key: `${mirror.prefix}/${NAME}`, file: source, partSize: PART_SIZE, inFlight: 2 });
  fs.rmSync(source);
  client.destroy();

  const results: Record<Method | 'baseline', Measured[]> = { plain: [], parallel: [], file: [], baseline: [] };
  const order: Method[] = ['plain', 'parallel', 'file'];
  for (let r = 0; r < runs; r++) {
    results.baseline.push(await child(env, 'baseline'));
    // Rotated each run, so no method always follows the same neighbour.
    for (let i = 0; i < order.length; i++) {
      const method = order[(i + r) % order.length]!;
      progress(`run ${r + 1}/${runs}: ${METHODS[method]}`);
      await flush();
      const out = path.join(work, 'download.bin');
      const m = await child(env, method, method === 'file' ? out : undefined);
      if (m.bytes !== size) throw new Error(`${method} read ${m.bytes} bytes, expected ${size}`);
      results[method].push(m);
      fs.rmSync(out, { force: true });
    }
  }

  const ms = (method: Method) => results[method].map((m) => m.ms);
  const plainMs = median(ms('plain'));
  const plainMBs = size / 1e6 / (plainMs / 1000);
  const mbs = (method: Method) => ms(method).map((t) => size / 1e6 / (t / 1000));
  const rows: Row[] = [];
  for (const method of order) {
    const ratio = method === 'plain' ? undefined : { value: median(ms(method)) / plainMs, to: 'of (a)' };
    rows.push({ section: SECTION, measure: `time, ${sizeMiB} MiB`, method: METHODS[method], unit: 'ms', values: ms(method), ratio });
  }
  for (const method of order) {
    const ratio = method === 'plain' ? undefined : { value: median(mbs(method)) / plainMBs, to: '(a)' };
    rows.push({ section: SECTION, measure: 'throughput', method: METHODS[method], unit: 'MB/s', values: mbs(method), ratio });
  }
  const baseHwm = median(results.baseline.map((m) => m.vmHwmKb / 1024));
  rows.push({
    section: SECTION,
    measure: 'peak RSS (VmHWM)',
    method: 'process that loads the same modules and HEADs, no download',
    unit: 'MiB',
    values: results.baseline.map((m) => m.vmHwmKb / 1024),
  });
  for (const method of order) {
    const values = results[method].map((m) => m.vmHwmKb / 1024);
    rows.push({
      section: SECTION,
      measure: 'peak RSS (VmHWM)',
      method: METHODS[method],
      unit: 'MiB',
      values,
      ratio: { value: median(values) / baseHwm, to: 'baseline' },
    });
  }
  for (const method of order) {
    rows.push({
      section: SECTION,
      measure: 'peak Buffer memory (arrayBuffers) above its start',
      method: METHODS[method],
      unit: 'MiB',
      values: results[method].map((m) => (m.arrayBuffersPeak - m.arrayBuffersBase) / MiB),
    });
  }
  process.stdout.write(
    [
      `S3 download of ${sizeMiB} MiB of random bytes, ${runs} run(s) per method, medians; each run in a fresh process, ` +
        'timed from its first request to the last byte (fsync included for (c)); ratios are to (a) in the same run. ' +
        'Peak RSS of a process that loads the same modules and sends the same HEAD is the baseline.',
      '',
      ...describeMachine(work).map((l) => `- ${l}`),
      '',
      renderTable(rows),
      '',
    ].join('\n'),
  );
} finally {
  await s3.stop();
  if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
}
