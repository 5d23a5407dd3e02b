import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { manifestName } from '../../src/shared/catalog/manifest.js';
import { sha256File } from '../../src/shared/codec/checksum.js';
import { createLogger } from '../../src/shared/runtime/logger.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { MIRROR, removeFromMirror } from '../../src/shared/storage/mirror.js';
import { storesOf } from '../../src/shared/storage/registry.js';
import { PART_SIZE, S3Storage } from '../../src/shared/storage/s3.js';
import { uploadFile } from '../../src/shared/storage/s3-upload.js';
import { nameOf } from '../../src/shared/storage/storage.js';
import { serviceEnv, type Bench } from '../lib/context.js';
import { ROOT, runShell } from '../lib/procs.js';
import { S3rverProcess } from '../lib/s3.js';
import { median, nowMs, timed } from '../lib/stats.js';
import type { Row } from '../lib/table.js';

const run = promisify(execFile);

export interface MirrorDeps {
  /** The generated database: the file every upload method copies. */
  database: string;
  /** This section's own directory: BACKUP_DIR, catalog, the bucket's data, `cp` destinations. */
  dir: string;
  prefix: string;
  /** Registers what an interrupted run must still undo (the S3 server process). */
  atExit(fn: () => Promise<void>): void;
}

const SECTION = '7 S3 mirror (s3rver on 127.0.0.1)';
export const METHOD = {
  cp: 'cp + sync (same file, same disk)',
  put: 'S3Storage.put (HEAD, multipart upload, read-back check)',
  upload: 'its upload alone (8 MiB parts in 2 reused buffers, SHA-256 per part)',
  check: 'its read-back check alone (GET + SHA-256)',
  childUpload: 'process uploading the file with S3Storage.put',
  childBaseline: 'same process, same modules and HEAD, no upload',
  plain: 'createBackup without a mirror',
  mirrored: 'createBackup with BACKUP_MIRROR_URL=s3://…',
} as const;

/** The 1 GiB upload's bound from the issue, in the unit test/s3/s3-mirror uses (200 × 2^20 bytes). */
const PEAK_LIMIT_MIB = 200;

function checkpoint(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Whatever the previous method left dirty in the page cache is flushed before the next starts. */
const flush = async () => {
  const r = await runShell('sync', [], 600_000);
  if (r.code !== 0) throw new Error(`sync failed: ${r.stderr}`);
};

interface Peak {
  vmHwmKb: number;
  maxRssKb: number;
  ms: number;
}

async function uploadProcess(env: Record<string, string>, mode: 'upload' | 'baseline', file: string, name: string, sha256: string) {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/lib/s3-upload-process.ts'), mode, file, name, sha256],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 600_000 },
  );
  return parsePeak(stdout);
}

function parsePeak(stdout: string): Peak {
  const line = stdout.trim().split('\n').pop() ?? '';
  const peak = JSON.parse(line) as Peak;
  if (!Number.isFinite(peak.vmHwmKb)) throw new Error(`the child process reported no VmHWM: ${stdout}`);
  return peak;
}

export async function benchMirror(bench: Bench, deps: MirrorDeps): Promise<void> {
  const s3 = await S3rverProcess.start(path.join(deps.dir, 's3rver'));
  deps.atExit(() => s3.stop());
  const env = serviceEnv(path.join(deps.dir, 'service'), deps.prefix);
  const s3env = {
    ...s3.env('workstation'),
    // The SDK warns that its releases from 2027 need Node 22: noise in the benchmark's output.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // Credentials reach the SDK through its default chain, as in the service: this process's environment.
  const saved = Object.fromEntries(Object.keys(s3env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, s3env);
  const plain: Config = env.with({ DATABASE_PATH: deps.database });
  const mirrored: Config = env.with({ DATABASE_PATH: deps.database, ...s3env });
  const childEnv = { ...env.env, DATABASE_PATH: deps.database, ...s3env };
  const catalog = new Catalog(plain.catalogPath);
  try {
    const mirror = storesOf(mirrored).mirror;
    if (!(mirror instanceof S3Storage)) throw new Error(`expected an S3 mirror for ${mirrored.mirrorUrl}`);
    checkpoint(deps.database);
    const file = deps.database;
    const bytes = fs.statSync(file).size;
    const sha256 = await sha256File(file);
    await upload(bench, { mirror, file, bytes, sha256, scratch: path.join(deps.dir, 'scratch') });
    await memory(bench, { mirror, childEnv, file, sha256 });
    await backups(bench, { plain, mirrored, catalog });
  } finally {
    catalog.close();
    await s3.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** 1: the same file into the bucket and onto the same disk with `cp`. */
async function upload(
  bench: Bench,
  ctx: { mirror: S3Storage; file: string; bytes: number; sha256: string; scratch: string },
): Promise<void> {
  const { mirror, file, bytes, sha256 } = ctx;
  fs.mkdirSync(ctx.scratch, { recursive: true });
  const ms: Record<'cp' | 'put' | 'upload' | 'check', number[]> = { cp: [], put: [], upload: [], check: [] };
  // The same client as `put` (its connections, its retries), reached past the private modifier on purpose.
  const client: S3Client = await mirror['client']();
  let reported: string | undefined;
  let n = 0;

  const steps: (() => Promise<void>)[] = [
    async () => {
      const dest = path.join(ctx.scratch, `cp-${n++}.db`);
      const r = await runShell('cp "$1" "$2" && sync "$2"', [file, dest], 600_000);
      if (r.code !== 0) throw new Error(`cp failed (${r.code}): ${r.stderr}`);
      ms.cp.push(r.ms);
      fs.rmSync(dest, { force: true });
    },
    async () => {
      const name = `put-${n++}.db`;
      ms.put.push((await timed(() => mirror.put(file, name, sha256))).ms);
      await flush();
      await mirror.remove(name);
    },
    async () => {
      // `put`'s two halves, one after the other on the same object: the upload with put's own
      // parameters, then put's read-back (the path it takes when the server reports no
      // whole-object checksum).
      const name = `split-${n++}.db`;
      const key = `${mirror.prefix}/${name}`;
      const t = await timed(async () => {
        await uploadFile({ client, bucket: mirror.bucket, key, file, partSize: PART_SIZE, inFlight: 2, metadata: { sha256 } });
      });
      ms.upload.push(t.ms);
      await flush();
      const head = await client.send(new HeadObjectCommand({ Bucket: mirror.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      reported = head.ChecksumSHA256 ?? 'nothing';
      const check = await timed(() => mirror.sha256(name));
      if (check.value !== sha256) throw new Error(`read back ${check.value} from ${key}, expected ${sha256}`);
      ms.check.push(check.ms);
      await mirror.remove(name);
    },
  ];
  for (let r = 0; r < bench.opts.runs; r++) {
    // Rotate the order each run so no method always follows the same neighbour.
    for (let i = 0; i < steps.length; i++) {
      const step = (i + r) % steps.length;
      bench.progress(`mirror upload run ${r + 1}/${bench.opts.runs}: ${['cp + sync', 'S3Storage.put', 'upload, then check'][step]}`);
      await steps[step]!();
    }
  }

  const mbs = (values: number[]) => values.map((m) => bytes / 1e6 / (m / 1000));
  const cp = median(mbs(ms.cp));
  const rows: Row[] = [
    { section: SECTION, measure: 'upload throughput', method: METHOD.cp, unit: 'MB/s', values: mbs(ms.cp) },
    ...(['put', 'upload', 'check'] as const).map((m): Row => ({
      section: SECTION,
      measure: 'upload throughput',
      method: METHOD[m],
      unit: 'MB/s',
      values: mbs(ms[m]),
      ratio: { value: median(mbs(ms[m])) / cp, to: 'cp+sync' },
    })),
  ];
  bench.rows.push(...rows);
  const put = median(ms.put);
  const up = median(ms.upload);
  const check = median(ms.check);
  bench.notes.push(
    `S3 mirror, where put's time goes (${(bytes / 2 ** 20).toFixed(0)} MiB file, medians of separate measurements, so on a ` +
      `loaded machine the shares need not add up): put ${(put / 1000).toFixed(2)} s; its upload alone ${(up / 1000).toFixed(2)} s ` +
      `(${((100 * up) / put).toFixed(0)} %), its read-back check alone ${(check / 1000).toFixed(2)} s (${((100 * check) / put).toFixed(0)} %). ` +
      (reported === 'nothing'
        ? 'After a multipart upload s3rver reports no checksum on HEAD with ChecksumMode=ENABLED, so put reads the whole object back. '
        : `After a multipart upload the server reports the checksum ${reported} on HEAD, so put need not read the object back. `) +
      's3rver never fsyncs; cp is followed by sync and timed with it.',
  );
}

const EMPTY_PROCESS = `process.stdout.write(JSON.stringify({ vmHwmKb: Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]), maxRssKb: 0, ms: 0 }))`;

/** VmHWM of an empty process with and without the TypeScript loader the upload process runs under. */
async function loaderShare(): Promise<number> {
  const peak = async (args: string[]) => parsePeak((await run(process.execPath, [...args, '-e', EMPTY_PROCESS], { cwd: ROOT })).stdout);
  const withTsx = await peak(['--import', 'tsx']);
  const without = await peak([]);
  return (withTsx.vmHwmKb - without.vmHwmKb) / 1024;
}

/** 2: peak resident memory of a process uploading the file, against the same process uploading nothing. */
async function memory(
  bench: Bench,
  ctx: { mirror: S3Storage; childEnv: Record<string, string>; file: string; sha256: string },
): Promise<void> {
  const peaks = { upload: [] as Peak[], baseline: [] as Peak[] };
  const tsx: number[] = [];
  for (let r = 0; r < bench.opts.runs; r++) {
    tsx.push(await loaderShare());
    const order = r % 2 ? (['upload', 'baseline'] as const) : (['baseline', 'upload'] as const);
    for (const mode of order) {
      bench.progress(`mirror memory run ${r + 1}/${bench.opts.runs}: ${mode}`);
      const name = `peak-${mode}-${r}.db`;
      peaks[mode].push(await uploadProcess(ctx.childEnv, mode, ctx.file, name, ctx.sha256));
      if (mode === 'upload') {
        await flush();
        await ctx.mirror.remove(name);
      }
    }
  }
  const mib = (p: Peak[]) => p.map((x) => x.vmHwmKb / 1024);
  const upload = mib(peaks.upload);
  const baseline = mib(peaks.baseline);
  const worst = Math.max(...upload);
  const for1GiB = bench.opts.sizeBytes === 1 << 30 ? '' : ' (the bound is for 1 GiB)';
  bench.rows.push(
    {
      section: SECTION,
      measure: 'peak resident memory (VmHWM)',
      method: METHOD.childUpload,
      unit: 'MiB',
      values: upload,
      ratio: { value: median(upload) / median(baseline), to: 'no upload' },
      target: { met: worst < PEAK_LIMIT_MIB, text: `< 200 MB in every run (worst ${worst.toFixed(0)} MB)${for1GiB}` },
    },
    { section: SECTION, measure: 'peak resident memory (VmHWM)', method: METHOD.childBaseline, unit: 'MiB', values: baseline },
    {
      section: SECTION,
      measure: 'peak resident memory (VmHWM)',
      method: 'added by the upload (same run, upload − no upload)',
      unit: 'MiB',
      values: upload.map((u, i) => u - baseline[i]!),
    },
    {
      section: SECTION,
      measure: 'peak resident memory (VmHWM)',
      method: 'of both, the TypeScript loader (empty process: node --import tsx − node)',
      unit: 'MiB',
      values: tsx,
    },
  );
  const rss = (p: Peak[]) => median(p.map((x) => x.maxRssKb / 1024)).toFixed(0);
  bench.notes.push(
    `S3 mirror memory: VmHWM read from /proc/self/status just before the process exits, as test/s3/s3-mirror does ("MB" there ` +
      `is 2^20 bytes). Not process.resourceUsage().maxRSS: Linux carries the forking parent's peak across exec, so it read ` +
      `${rss(peaks.upload)} MiB uploading and ${rss(peaks.baseline)} MiB not.`,
  );
}

/** 3: a whole backup with and without the copy to the bucket. */
async function backups(bench: Bench, ctx: { plain: Config; mirrored: Config; catalog: Catalog }): Promise<void> {
  const { catalog } = ctx;
  // The backup's own log lines, timestamped as they are written: where the local backup ends and
  // the copy starts, inside the very backup that is timed.
  const marks = new Map<string, number>();
  const log = createLogger({ logLevel: 'info' }, 'bench', 1, {
    write: (line: string) => void marks.set((JSON.parse(line) as { msg: string }).msg, nowMs()),
  });
  const ms = { plain: [] as number[], mirrored: [] as number[], copy: [] as number[], catchUp: [] as number[] };
  const once = async (mode: 'plain' | 'mirrored') => {
    const config = ctx[mode];
    marks.clear();
    const t = await timed(() => createBackup({ config, catalog, log }, { type: 'manual', jobId: null }));
    const end = nowMs();
    const row = t.value;
    const name = nameOf(row);
    if (mode === 'mirrored') {
      const copy = catalog.copies(MIRROR).find((c) => c.backup_id === row.id);
      if (copy?.status !== 'ok') throw new Error(`the mirror copy of ${name} failed: ${copy?.error_message ?? 'no copy recorded'}`);
      const completed = marks.get('backup completed');
      const copied = marks.get('backup copied to the mirror');
      if (completed === undefined || copied === undefined)
        throw new Error(`the backup did not log its steps: ${[...marks.keys()].join(', ')}`);
      ms.copy.push(end - completed);
      ms.catchUp.push(end - copied);
    }
    ms[mode].push(t.ms);
    catalog.deleteBackup(row.id);
    const { primary } = storesOf(config);
    await primary.remove(name);
    await primary.remove(manifestName(name));
    await flush();
    if (mode === 'mirrored') await removeFromMirror(config, name);
  };
  for (let r = 0; r < bench.opts.runs; r++) {
    const order = r % 2 ? (['mirrored', 'plain'] as const) : (['plain', 'mirrored'] as const);
    for (const mode of order) {
      bench.progress(`mirror backup run ${r + 1}/${bench.opts.runs}: ${METHOD[mode]}`);
      await once(mode);
    }
  }
  const plain = median(ms.plain);
  bench.rows.push(
    { section: SECTION, measure: 'time to a durable backup', method: METHOD.plain, unit: 'ms', values: ms.plain },
    {
      section: SECTION,
      measure: 'time to a durable backup',
      method: `${METHOD.mirrored} (returns once the copy is checked)`,
      unit: 'ms',
      values: ms.mirrored,
      ratio: { value: median(ms.mirrored) / plain, to: 'without' },
    },
    {
      section: SECTION,
      measure: 'time to a durable backup',
      method: 'added by the copy (same run, with − without)',
      unit: 'ms',
      values: ms.mirrored.map((m, i) => m - ms.plain[i]!),
    },
    {
      section: SECTION,
      measure: 'time to a durable backup',
      method: "the copy inside the backup with the mirror (from its 'backup completed' to its return)",
      unit: 'ms',
      values: ms.copy,
    },
  );
  bench.notes.push(
    `S3 mirror, inside createBackup: after "backup copied to the mirror" the catch-up (catalog lookups; nothing was missing) ` +
      `took a median ${median(ms.catchUp).toFixed(0)} ms before createBackup returned.`,
  );
}
