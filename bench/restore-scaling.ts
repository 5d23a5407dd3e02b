/**
 * Where a restore's time goes, and how it grows with the database: at each size, a generated
 * database under an application process committing every 5 ms, one backup of it, then restores
 * through the API (`POST /api/backups/:id/restore`) of that backup never verified and verified
 * before, each against `cp` + `sync` of the same backup file in the same run. The worker's own log
 * gives each restore's split; its peak RSS is read from /proc once per size (a fresh worker each).
 *
 *   npm run bench:restore -- [--sizes 512,1024,2048,4096] [--runs 3] [--dir DIR] [--out FILE]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startProducer } from '../src/producer/server.js';
import { Catalog } from '../src/shared/catalog/catalog.js';
import { createLogger } from '../src/shared/runtime/logger.js';
import { REDIS_URL, serviceEnv } from './lib/context.js';
import { generateDatabase } from './lib/dbgen.js';
import { api, expectStatus } from './lib/http.js';
import { describeMachine } from './lib/machine.js';
import { deletePrefix, runShell, WorkerProcess } from './lib/procs.js';
import { median } from './lib/stats.js';
import { Writer } from './lib/writer.js';
import { forgetVerifications } from './sections/restore.js';

const SPLIT = 'backup copied in and checked';
const GiB = 2 ** 30;

interface Run {
  ms: number;
  stallMs: number;
  split: Record<string, number | boolean>;
}

interface SizeResult {
  sizeMiB: number;
  bytes: number;
  cp: number[];
  never: Run[];
  verified: Run[];
  idleMaxMs: number;
  peakRssMiB: number;
  writerErrors: number;
}

function options() {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '512,1024,2048,4096' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const runs = Number(values.runs);
  if (sizes.some((s) => !Number.isFinite(s) || s < 4)) throw new Error(`--sizes: MiB values ≥ 4, got ${values.sizes}`);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: a whole number ≥ 1, got ${values.runs}`);
  return { sizes, runs, dir: path.resolve(values.dir ?? os.tmpdir()), out: values.out };
}

/** The process's peak resident set (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function measureSize(sizeMiB: number, runs: number, root: string, progress: (m: string) => void): Promise<SizeResult> {
  const dir = fs.mkdtempSync(path.join(root, `wb-restore-${sizeMiB}-`));
  const svc = serviceEnv(dir, `wbbench-restore-${randomBytes(4).toString('hex')}`);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  try {
    progress(`${sizeMiB} MiB: generating the database`);
    const gen = generateDatabase(svc.config.databasePath, sizeMiB * 2 ** 20);
    const catalog = new Catalog(svc.config.catalogPath);
    cleanups.push(() => catalog.close());
    const worker = await WorkerProcess.start(svc.env);
    cleanups.push(() => worker.stop());
    const producer = await startProducer(svc.config, createLogger(svc.config, 'producer'));
    cleanups.push(() => producer.close());
    const writer = await Writer.start(svc.config.databasePath, 5);
    cleanups.push(() => writer.stop());
    const idle = await writer.idleWindow(3_000);

    const made = await api(producer.url, 'POST', '/api/backups');
    expectStatus(made, 201, 'POST /api/backups');
    const backup = made.body.backup as { id: number; filePath: string };
    const result: SizeResult = {
      sizeMiB,
      bytes: fs.statSync(backup.filePath).size,
      cp: [],
      never: [],
      verified: [],
      idleMaxMs: Math.max(...idle.latencies),
      peakRssMiB: 0,
      writerErrors: 0,
    };
    for (let run = 0; run < runs; run++) {
      const dest = path.join(dir, 'reference.db');
      const ref = await runShell('cp "$1" "$2" && sync "$2"', [backup.filePath, dest], 3_600_000);
      fs.rmSync(dest, { force: true });
      if (ref.code !== 0) throw new Error(`cp failed: ${ref.stderr}`);
      result.cp.push(ref.ms);
      forgetVerifications(svc.config.catalogPath, backup.id);
      for (const into of [result.never, result.verified]) {
        progress(`${sizeMiB} MiB: run ${run + 1}/${runs}, ${into === result.never ? 'never verified' : 'verified before'}`);
        const splitsBefore = worker.logged(SPLIT).length;
        writer.mark();
        const res = await api(producer.url, 'POST', `/api/backups/${backup.id}/restore`);
        const samples = await writer.take();
        expectStatus(res, 200, 'POST /api/backups/:id/restore');
        const restore = res.body.restore as { status: string; safetyBackupId: number | null };
        if (restore.status !== 'completed') throw new Error(`restore ended ${restore.status}`);
        const split = worker.logged(SPLIT)[splitsBefore] as Record<string, number | boolean>;
        into.push({ ms: res.ms, stallMs: Math.max(0, ...samples.latencies), split });
        result.writerErrors += samples.errors;
        if (restore.safetyBackupId) {
          const safety = catalog.getBackup(restore.safetyBackupId);
          if (safety) fs.rmSync(safety.file_path, { force: true });
          catalog.deleteBackup(restore.safetyBackupId);
        }
      }
    }
    result.peakRssMiB = peakRssMiB(worker.child.pid!);
    progress(`${sizeMiB} MiB (${(gen.bytes / 2 ** 20).toFixed(0)} MiB file): done`);
    return result;
  } finally {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
    await deletePrefix(REDIS_URL, svc.prefix).catch(() => 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const part = (runs: Run[], key: string) => median(runs.map((r) => Number(r.split[key] ?? 0)));

function render(results: SizeResult[], runs: number, command: string, machine: string[]): string {
  const lines = [
    `## Restore scaling run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`${command}\`; medians of ${runs} run(s) per size; a writer process commits every 5 ms throughout.`,
    '',
    ...machine.map((m) => `- ${m}`),
    '',
    '| database | backup file | cp + sync | restore, verified before | ratio | s/GiB | restore, never verified | ratio | s/GiB | writer stall (verified / never / idle max) | worker peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const cp = median(r.cp);
    const v = median(r.verified.map((x) => x.ms));
    const n = median(r.never.map((x) => x.ms));
    const gib = r.bytes / GiB;
    lines.push(
      `| ${r.sizeMiB} MiB | ${(r.bytes / 2 ** 20).toFixed(0)} MiB | ${s(cp)} | ${s(v)} | ${(v / cp).toFixed(2)}× | ${(v / 1000 / gib).toFixed(2)} | ` +
        `${s(n)} | ${(n / cp).toFixed(2)}× | ${(n / 1000 / gib).toFixed(2)} | ` +
        `${median(r.verified.map((x) => x.stallMs)).toFixed(0)} / ${median(r.never.map((x) => x.stallMs)).toFixed(0)} / ${r.idleMaxMs.toFixed(0)} ms | ` +
        `${r.peakRssMiB.toFixed(0)} MiB |`,
    );
  }
  lines.push(
    '',
    'Where the time went (the worker\'s log, medians; "checks" is the source\'s verification beside the safety backup, ' +
      'and beside the copy when it began early; "copy" is from then to the end: the rest of the copy until it committed, ' +
      'then its checkpoint beside quick_check of the live database):',
    '',
    '| database | restore | checks (∥ safety backup) | safety backup | copy began early | copy after the checks | of which until commit | checkpoint | quick_check (live) |',
    '|---|---|---:|---:|---|---:|---:|---:|---:|',
  );
  for (const r of results) {
    for (const [name, list] of [
      ['verified before', r.verified],
      ['never verified', r.never],
    ] as const) {
      lines.push(
        `| ${r.sizeMiB} MiB | ${name} | ${s(part(list, 'checksMs'))} | ${s(part(list, 'safetyMs'))} | ${list.every((x) => x.split.early) ? 'yes' : list.some((x) => x.split.early) ? 'some' : 'no'} | ` +
          `${s(part(list, 'copyMs'))} | ${s(part(list, 'copiedMs'))} | ${s(part(list, 'checkpointMs'))} | ${s(part(list, 'checkMs'))} |`,
      );
    }
  }
  const errors = results.reduce((n, r) => n + r.writerErrors, 0);
  if (errors) lines.push('', `Writer errors during restores: ${errors}.`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const opts = options();
  const started = Date.now();
  const progress = (m: string) => process.stderr.write(`[restore +${((Date.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
  const results: SizeResult[] = [];
  for (const size of opts.sizes) results.push(await measureSize(size, opts.runs, opts.dir, progress));
  const command = `npm run bench:restore -- ${process.argv.slice(2).join(' ')}`.trim();
  const report = render(results, opts.runs, command, describeMachine(opts.dir));
  process.stdout.write(`${report}\n`);
  if (opts.out) fs.writeFileSync(opts.out, `${report}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
