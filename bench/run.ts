/**
 * `npm run bench [-- --quick] [-- --size 1024] [-- --runs 3]`: generates its own databases, measures
 * backup, disturbance, compression, verify, restore, the queue/API, the S3 mirror and WAL archiving
 * side by side with the tools people use instead, and prints one markdown table. Never part of `npm test`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Catalog } from '../src/shared/catalog/catalog.js';
import { COMPRESSION_MODES } from '../src/shared/domain/backup-types.js';
import { createLogger } from '../src/shared/runtime/logger.js';
import { startProducer, type RunningProducer } from '../src/producer/server.js';
import { REDIS_URL, serviceEnv, type Bench, type BenchOptions } from './lib/context.js';
import { generateDatabase } from './lib/dbgen.js';
import { describeMachine } from './lib/machine.js';
import { deletePrefix, WorkerProcess } from './lib/procs.js';
import { median } from './lib/stats.js';
import { renderTable } from './lib/table.js';
import { benchBackup } from './sections/backup.js';
import { benchMirror } from './sections/mirror.js';
import { benchQueue } from './sections/queue.js';
import { benchRestore } from './sections/restore.js';
import { benchVerify } from './sections/verify.js';
import { benchWal } from './sections/wal.js';

const SECTIONS = ['backup', 'verify', 'restore', 'queue', 'mirror', 'wal'] as const;
type Section = (typeof SECTIONS)[number];

function options(argv: string[]): BenchOptions & { out?: string; only: Set<Section> } {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      size: { type: 'string' },
      runs: { type: 'string' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      [
        'npm run bench -- [--quick] [--size MiB] [--runs N] [--dir DIR] [--out FILE] [--only backup,verify,restore,queue,mirror,wal] [--keep]',
        '  --quick   32 MiB database and fewer requests: a smoke run of about a minute',
        '  --size    size of the generated database in MiB (default 1024, 32 with --quick)',
        '  --runs    runs per measurement (default 3, at least 3)',
        '  --dir     where to generate databases (default the OS temp directory); deleted afterwards unless --keep',
        '  --out     also write the report to FILE',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const quick = values.quick;
  const sizeMiB = values.size ? Number(values.size) : quick ? 32 : 1024;
  const runs = values.runs ? Number(values.runs) : 3;
  if (!Number.isFinite(sizeMiB) || sizeMiB < 4) throw new Error(`--size must be a number of MiB ≥ 4, got ${values.size}`);
  if (!Number.isInteger(runs) || runs < 3)
    throw new Error(`--runs must be a whole number ≥ 3 (the table reports medians), got ${values.runs}`);
  const only = new Set<Section>();
  for (const s of (values.only ?? SECTIONS.join(',')).split(',')) {
    if (!SECTIONS.includes(s as Section)) throw new Error(`--only: unknown section ${s}; expected ${SECTIONS.join(', ')}`);
    only.add(s as Section);
  }
  return {
    quick,
    sizeBytes: Math.round(sizeMiB * 1024 * 1024),
    runs,
    writerEveryMs: 5,
    baselineMs: quick ? 1_000 : 3_000,
    minToolTimeoutMs: quick ? 5_000 : 60_000,
    requests: quick ? 8 : 50,
    verifyJobs: quick ? 10 : 100,
    listRequests: quick ? 50 : 300,
    workDir: path.resolve(values.dir ?? os.tmpdir()),
    keep: values.keep,
    out: values.out,
    only,
  };
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const started = Date.now();
  const progress = (message: string) => process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${message}\n`);
  const bench: Bench = { opts, rows: [], notes: [], progress };
  const work = fs.mkdtempSync(path.join(opts.workDir, 'wb-bench-'));
  const tag = randomBytes(4).toString('hex');
  const main = serviceEnv(path.join(work, 'main'), `wbbench-${tag}`);
  const small = serviceEnv(path.join(work, 'small'), `wbbench-${tag}-small`);
  const machine = describeMachine(work);
  const cleanups: (() => Promise<void> | void)[] = [];
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      progress(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  let cleaning: Promise<void> | undefined;
  function cleanup(): Promise<void> {
    cleaning ??= (async () => {
      progress('cleaning up: processes, Redis keys, generated files');
      for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch((err) => progress(`cleanup: ${(err as Error).message}`));
      await deletePrefix(REDIS_URL, main.prefix).catch(() => 0);
      await deletePrefix(REDIS_URL, small.prefix).catch(() => 0);
      if (!opts.keep) fs.rmSync(work, { recursive: true, force: true });
    })();
    return cleaning;
  }

  let dbInfo = '';
  try {
    const needMain = opts.only.has('backup') || opts.only.has('verify') || opts.only.has('restore');
    if (needMain || opts.only.has('mirror')) {
      progress(`generating a ${(opts.sizeBytes / 2 ** 20).toFixed(0)} MiB database in ${work}`);
      const gen = generateDatabase(main.config.databasePath, opts.sizeBytes);
      dbInfo = `${(gen.bytes / 2 ** 20).toFixed(0)} MiB, ${gen.rows.toLocaleString('en')} executions plus users, workflows, audit log, 7 indexes, WAL`;
      progress(`database ready: ${dbInfo}`);
    }
    if (needMain) {
      const scratch = path.join(work, 'scratch');
      fs.mkdirSync(scratch);
      const catalog = new Catalog(main.config.catalogPath);
      cleanups.push(() => catalog.close());
      const worker = await WorkerProcess.start(main.env);
      cleanups.push(() => worker.stop());
      const producer: RunningProducer = await startProducer(main.config, createLogger(main.config, 'producer'));
      cleanups.push(() => producer.close());
      const log = createLogger({ logLevel: 'silent' }, 'bench');

      const { kept, writerIdle } = await benchBackup(bench, {
        config: main.config,
        compressed: new Map(COMPRESSION_MODES.filter((m) => m !== 'none').map((m) => [m, main.with({ BACKUP_COMPRESSION: m })])),
        catalog,
        log,
        producerUrl: producer.url,
        worker,
        scratch,
      });
      if (opts.only.has('verify')) await benchVerify(bench, main.config, kept);
      if (opts.only.has('restore')) {
        await benchRestore(
          bench,
          { config: main.config, catalog, producerUrl: producer.url, worker, scratch, writerIdleMax: median(writerIdle.max) },
          kept,
        );
      }
    }
    if (opts.only.has('queue') && !interrupted) await benchQueue(bench, small);
    if (opts.only.has('mirror') && !interrupted) {
      await benchMirror(bench, {
        database: main.config.databasePath,
        dir: path.join(work, 'mirror'),
        prefix: `wbbench-${tag}-mirror`,
        atExit: (fn) => cleanups.push(fn),
      });
    }
    if (opts.only.has('wal') && !interrupted) {
      await benchWal(bench, { dir: path.join(work, 'wal'), prefix: `wbbench-${tag}-wal`, atExit: (fn) => cleanups.push(fn) });
    }
  } finally {
    await cleanup();
  }

  const order = (s: string) => Number(s.split(' ')[0]);
  const rows = [...bench.rows].sort((a, b) => order(a.section) - order(b.section));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const report = [
    `## Benchmark run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`${command}\` (took ${((Date.now() - started) / 60_000).toFixed(1)} min)`,
    '',
    ...machine.map((m) => `- ${m}`),
    `- Load average at end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    ...(dbInfo ? [`- Database: ${dbInfo}`] : []),
    '',
    `Every number is the median of ${opts.runs} runs (latency rows: the median of each run's percentile), with min–max over the runs. ` +
      'Ratios compare medians measured in this same run, so they hold on a noisy shared machine where absolute times drift.',
    '',
    renderTable(rows),
    '',
    ...(bench.notes.length ? ['Notes:', ...[...new Set(bench.notes)].map((n) => `- ${n}`), ''] : []),
  ].join('\n');
  process.stdout.write(`${report}\n`);
  if (opts.out) fs.writeFileSync(opts.out, `${report}\n`);
}

main().then(
  // Kept-alive HTTP sockets and closed Redis clients may still hold the loop for a while.
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
