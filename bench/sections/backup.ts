import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createBackup } from '../../src/shared/backup/backup.js';
import type { BackupRow, Catalog } from '../../src/shared/catalog/catalog.js';
import type { CompressionMode } from '../../src/shared/domain/backup-types.js';
import type { Config } from '../../src/shared/runtime/config.js';
import type { Logger } from '../../src/shared/runtime/logger.js';
import type { Bench } from '../lib/context.js';
import { api, expectStatus } from '../lib/http.js';
import { LoopMonitor, runShell, type WorkerProcess } from '../lib/procs.js';
import { median, percentile, timed } from '../lib/stats.js';
import type { Row } from '../lib/table.js';
import { Writer } from '../lib/writer.js';

export interface BackupDeps {
  config: Config;
  /** The same service configured for each compressing BACKUP_COMPRESSION mode. */
  compressed: Map<CompressionMode, Config>;
  catalog: Catalog;
  log: Logger;
  producerUrl: string;
  worker: WorkerProcess;
  scratch: string;
}

type Outcome = { ms: number; bytes: number; loopMs?: number } | { timedOut: true };

interface Tool {
  name: string;
  idleOnly?: boolean;
  run(timeoutMs: number): Promise<Outcome>;
}

interface Tally {
  ms: number[];
  bytes: number[];
  loop: number[];
  timeouts: number;
  limitMs: number;
  p50: number[];
  p99: number[];
  max: number[];
  writerErrors: number;
}

const newTally = (): Tally => ({ ms: [], bytes: [], loop: [], timeouts: 0, limitMs: 0, p50: [], p99: [], max: [], writerErrors: 0 });

export const TOOL = {
  ours: 'createBackup (worker code, queue excluded)',
  queued: 'POST /api/backups (queue + worker process)',
  cp: 'cp + sync of checkpointed file (the limit; not consistent under writes)',
  vacuum: 'sqlite3 CLI VACUUM INTO + sync',
  dotBackup: 'sqlite3 CLI .backup + sync',
} as const;

const COMPRESSED_PREFIX = 'createBackup, BACKUP_COMPRESSION=';

/** Issue 15: a compressed backup within this many times the time of the uncompressed one. */
const COMPRESSION_TARGET: Record<string, number> = { zstd: 1.5, gzip: 2.5 };
const compressionTarget = (mode: string, ratio: number) => ({
  met: ratio <= COMPRESSION_TARGET[mode]!,
  text: `≤ ${COMPRESSION_TARGET[mode]}× none (is ${ratio.toFixed(2)}×)`,
});
const compressedTool = (mode: CompressionMode) => `${COMPRESSED_PREFIX}${mode}`;

function checkpoint(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

async function removeBackup(catalog: Catalog, row: Pick<BackupRow, 'id' | 'file_path'>): Promise<void> {
  await fs.promises.rm(row.file_path, { force: true });
  catalog.deleteBackup(row.id);
}

export async function benchBackup(bench: Bench, deps: BackupDeps): Promise<{ kept: BackupRow; writerIdle: Tally }> {
  const { config, catalog, log, scratch } = deps;
  const live = config.databasePath;
  const loop = new LoopMonitor();
  // This process only waits while the worker process runs a queued backup: its stalls then are
  // the machine's scheduling noise, the floor under every stall measured here.
  const noise: number[] = [];
  let n = 0;
  const cliOut = () => path.join(scratch, `cli-${n++}.db`);

  const inProcess = (cfg: Config) => async (): Promise<Outcome> => {
    loop.take();
    const t = await timed(() => createBackup({ config: cfg, catalog, log }, { type: 'manual', jobId: null }));
    const loopMs = loop.take();
    await removeBackup(catalog, t.value);
    return { ms: t.ms, bytes: t.value.file_size_bytes ?? 0, loopMs };
  };
  const cli =
    (script: string, before?: () => void) =>
    async (timeoutMs: number): Promise<Outcome> => {
      const dest = cliOut();
      before?.();
      try {
        const r = await runShell(script, [live, dest], timeoutMs);
        if (r.timedOut) return { timedOut: true };
        if (r.code !== 0) throw new Error(`${script} failed (${r.code}): ${r.stderr}`);
        return { ms: r.ms, bytes: fs.statSync(dest).size };
      } finally {
        fs.rmSync(dest, { force: true });
      }
    };

  const tools: Tool[] = [
    { name: TOOL.ours, run: inProcess(config) },
    ...[...deps.compressed].map(([mode, cfg]): Tool => ({ name: compressedTool(mode), idleOnly: true, run: inProcess(cfg) })),
    {
      name: TOOL.queued,
      run: async () => {
        await deps.worker.loopStall();
        loop.take();
        const res = await api(deps.producerUrl, 'POST', '/api/backups');
        expectStatus(res, 201, 'POST /api/backups');
        noise.push(loop.take());
        const loopMs = await deps.worker.loopStall();
        const b = res.body.backup as { id: number; filePath: string; fileSize: number };
        await removeBackup(catalog, { id: b.id, file_path: b.filePath });
        return { ms: res.ms, bytes: b.fileSize, loopMs };
      },
    },
    { name: TOOL.cp, run: cli('cp "$1" "$2" && sync "$2"', () => checkpoint(live)) },
    { name: TOOL.vacuum, run: cli(`sqlite3 -cmd ".timeout 60000" "$1" "VACUUM INTO '$2'" && sync "$2"`) },
    { name: TOOL.dotBackup, run: cli(`sqlite3 -cmd ".timeout 60000" "$1" ".backup '$2'" && sync "$2"`) },
  ];

  const results = { idle: new Map<string, Tally>(), loaded: new Map<string, Tally>() };
  const writerIdle = newTally();

  for (const phase of ['idle', 'loaded'] as const) {
    const writer = phase === 'loaded' ? await Writer.start(live, bench.opts.writerEveryMs) : undefined;
    try {
      for (let run = 0; run < bench.opts.runs; run++) {
        if (writer) {
          const base = await writer.idleWindow(bench.opts.baselineMs);
          writerIdle.p50.push(percentile(base.latencies, 50));
          writerIdle.p99.push(percentile(base.latencies, 99));
          writerIdle.max.push(Math.max(...base.latencies));
          writerIdle.writerErrors += base.errors;
        }
        const list = tools.filter((t) => phase === 'idle' || !t.idleOnly);
        // Rotate the order each run so no tool always follows the same neighbour.
        const order = list.map((_, i) => list[(i + run) % list.length]!);
        for (const tool of order) {
          const tally = results[phase].get(tool.name) ?? newTally();
          results[phase].set(tool.name, tally);
          // In quick mode a tool that never finished is not given the time again.
          if (bench.opts.quick && tally.timeouts > 0) continue;
          const idleMax = Math.max(0, ...(results.idle.get(tool.name)?.ms ?? []));
          tally.limitMs = Math.max(bench.opts.minToolTimeoutMs, 5 * idleMax);
          bench.progress(`backup ${phase} run ${run + 1}/${bench.opts.runs}: ${tool.name}`);
          writer?.mark();
          const outcome = await tool.run(tally.limitMs);
          if (writer) {
            const s = await writer.take();
            if (s.latencies.length) {
              tally.p50.push(percentile(s.latencies, 50));
              tally.p99.push(percentile(s.latencies, 99));
              tally.max.push(Math.max(...s.latencies));
            }
            tally.writerErrors += s.errors;
            if (s.errors) bench.notes.push(`Writer errors during ${tool.name}: ${s.errors} (${s.lastError}).`);
          }
          if ('timedOut' in outcome) {
            tally.timeouts++;
            continue;
          }
          tally.ms.push(outcome.ms);
          tally.bytes.push(outcome.bytes);
          if (outcome.loopMs !== undefined) tally.loop.push(outcome.loopMs);
        }
      }
    } finally {
      await writer?.stop();
    }
  }
  loop.stop();
  pushRows(bench, results, writerIdle, noise);

  // One backup that stays, for the verify and restore sections.
  const kept = await createBackup({ config, catalog, log }, { type: 'manual', jobId: null });
  return { kept, writerIdle };
}

function pushRows(bench: Bench, results: Record<'idle' | 'loaded', Map<string, Tally>>, writerIdle: Tally, noise: number[]): void {
  const rows = bench.rows;
  const med = (t: Tally | undefined) => (t && t.ms.length ? median(t.ms) : Number.NaN);
  const for1GiB = bench.opts.sizeBytes === 1 << 30 ? '' : ' (target is for 1 GiB)';

  for (const phase of ['idle', 'loaded'] as const) {
    const section = phase === 'idle' ? '1 Backup, idle database' : `1 Backup, writer commits every ${bench.opts.writerEveryMs} ms`;
    const cp = med(results[phase].get(TOOL.cp));
    const vacuum = med(results[phase].get(TOOL.vacuum));
    for (const [name, t] of results[phase]) {
      const row: Row = { section, measure: 'time to a durable copy', method: name, unit: 'ms', values: t.ms };
      if (t.timeouts) row.failures = `${t.timeouts}× did not finish within ${(t.limitMs / 1000).toFixed(0)} s`;
      if (name !== TOOL.cp && t.ms.length) row.ratio = { value: median(t.ms) / cp, to: 'cp+sync' };
      if (name === TOOL.ours && phase === 'loaded') {
        const rv = median(t.ms) / vacuum;
        const rc = median(t.ms) / cp;
        const finished = t.timeouts === 0 && t.ms.length > 0;
        row.target = {
          met: finished && rv <= 1.0 && rc <= 2.0,
          text: `finishes, ≤ 1.0× VACUUM INTO (is ${rv.toFixed(2)}×), ≤ 2.0× cp+sync (is ${rc.toFixed(2)}×)${for1GiB}`,
        };
      }
      rows.push(row);
    }
  }

  // Compression: the idle runs of createBackup in every mode.
  const plain = results.idle.get(TOOL.ours)!;
  const mib = (b: number[]) => b.map((x) => x / 1048576);
  const modes = [...results.idle.keys()].filter((name) => name.startsWith(COMPRESSED_PREFIX));
  rows.push({ section: '3 Compression', measure: 'backup time', method: 'none', unit: 'ms', values: plain.ms });
  for (const name of modes) {
    const t = results.idle.get(name)!;
    const method = name.slice(COMPRESSED_PREFIX.length);
    rows.push({
      section: '3 Compression',
      measure: 'backup time',
      method,
      unit: 'ms',
      values: t.ms,
      ratio: { value: median(t.ms) / median(plain.ms), to: 'none' },
      ...(method in COMPRESSION_TARGET ? { target: compressionTarget(method, median(t.ms) / median(plain.ms)) } : {}),
    });
  }
  rows.push({ section: '3 Compression', measure: 'backup file size', method: 'none', unit: 'MiB', values: mib(plain.bytes) });
  for (const name of modes) {
    const t = results.idle.get(name)!;
    const method = name.slice(COMPRESSED_PREFIX.length);
    rows.push({
      section: '3 Compression',
      measure: 'backup file size',
      method,
      unit: 'MiB',
      values: mib(t.bytes),
      ratio: { value: median(t.bytes) / median(plain.bytes), to: 'none' },
    });
  }

  // Disturbance: the writer's commit latency during each backup under load, against no backup.
  const section = '2 Disturbance';
  const idleP = { p50: median(writerIdle.p50), p99: median(writerIdle.p99), max: median(writerIdle.max) };
  for (const q of ['p50', 'p99', 'max'] as const) {
    rows.push({ section, measure: `writer commit ${q}`, method: 'no backup running', unit: 'ms', values: writerIdle[q] });
  }
  for (const [name, t] of results.loaded) {
    for (const q of ['p50', 'p99', 'max'] as const) {
      const row: Row = { section, measure: `writer commit ${q}`, method: `during ${name}`, unit: 'ms', values: t[q] };
      if (t[q].length) row.ratio = { value: median(t[q]) / idleP[q], to: 'no backup' };
      if (q === 'p99' && (name === TOOL.ours || name === TOOL.queued)) {
        const r = median(t[q]) / idleP.p99;
        row.target = { met: r <= 1.5, text: `≤ 1.5× idle p99 (is ${r.toFixed(2)}×)` };
      }
      if (t.writerErrors) row.failures = `${t.writerErrors} writer errors`;
      rows.push(row);
    }
  }
  for (const name of [TOOL.ours, TOOL.queued]) {
    const loops = [...(results.idle.get(name)?.loop ?? []), ...(results.loaded.get(name)?.loop ?? [])];
    const worst = loops.length ? Math.max(...loops) : Number.NaN;
    rows.push({
      section,
      measure: 'worker event loop, longest stall per backup',
      method:
        name === TOOL.ours ? 'createBackup in this process (idle + loaded runs)' : 'worker process running the job (idle + loaded runs)',
      unit: 'ms',
      values: loops,
      target: { met: worst <= 100, text: `never > 100 ms (worst ${worst.toFixed(0)} ms)` },
    });
  }
  rows.push({
    section,
    measure: 'worker event loop, longest stall per backup',
    method: 'noise floor: the benchmark process, waiting on the queued backups',
    unit: 'ms',
    values: noise,
  });
}
