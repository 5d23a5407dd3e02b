/**
 * Continuous WAL archiving (issue 13) under an application that commits every few milliseconds:
 * what archiving costs the application's commits, how far behind the archive runs, how large the
 * `-wal` file gets, how many commits a crash loses, how long a restore to the latest point and to a
 * random moment take (issue 14), and how long a restore drill takes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import type { WalSegmentRow } from '../../src/shared/catalog/catalog-schema.js';
import { createLogger } from '../../src/shared/runtime/logger.js';
import { startProducer } from '../../src/producer/server.js';
import { CHECKPOINT_FRAMES } from '../../src/shared/wal/archiver.js';
import { archiverState } from '../../src/shared/wal/archiver-state.js';
import { WAL_FOLDER } from '../../src/shared/wal/segment-store.js';
import { WAL_HEADER_SIZE } from '../../src/shared/wal/wal-format.js';
import type { DrillOutcome } from '../../src/shared/wal/drill.js';
import { recoveryWindow } from '../../src/shared/wal/window.js';
import { BENCH_TOKEN, REDIS_URL, serviceEnv, type Bench } from '../lib/context.js';
import { generateDatabase } from '../lib/dbgen.js';
import { deletePrefix, runShell, WorkerProcess } from '../lib/procs.js';
import { median, nowMs, percentile } from '../lib/stats.js';
import type { Row } from '../lib/table.js';
import { Writer } from '../lib/writer.js';

export interface WalDeps {
  dir: string;
  prefix: string;
  /** Registers what an interrupted run must still undo (processes, connections). */
  atExit(fn: () => Promise<void> | void): void;
}

const SECTION = '8 WAL archiving';
const INTERVAL_MS = 1_000;
/** The archiver's lease in the catalog's settings: null once an archiver has let go of the database. */
const LEASE_KEY = 'wal-archiver-lease';
/** The balance every account starts with in the generated database; transfers keep the sum. */
const START_BALANCE = 1_000;
/** A commit slower than this is counted: what holds the writer shows in how many there are. */
const SLOW_MS = 10;

async function call(base: string, method: 'PUT' | 'POST', route: string, body: unknown) {
  const start = nowMs();
  const res = await fetch(base + route, {
    method,
    headers: { Authorization: `Bearer ${BENCH_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(3_600_000),
  });
  const json = (await res.json()) as Record<string, unknown>;
  const ms = nowMs() - start;
  if (res.status !== 200)
    throw new Error(`${method} ${route}: expected HTTP 200, got ${res.status}: ${JSON.stringify(json).slice(0, 500)}`);
  return { ms, body: json };
}

async function until<T>(what: string, check: () => T | undefined | null | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`wal: ${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/** A short-lived read-only look at the database; read-only connections never checkpoint. */
function peek<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    return fn(db);
  } finally {
    db.close();
  }
}

const lastCommit = (db: Database.Database) =>
  db.prepare(`SELECT id, at FROM audit_log WHERE action = 'transfer' ORDER BY id DESC LIMIT 1`).get() as
    { id: number; at: string } | undefined;

/** The largest size the `-wal` file reaches, sampled every 20 ms. */
function sampleWal(file: string): { stop(): number } {
  let max = 0;
  const look = () => {
    try {
      max = Math.max(max, fs.statSync(file).size);
    } catch {
      // Not there: nothing written since the last truncation.
    }
  };
  look();
  const timer = setInterval(look, 20);
  return {
    stop() {
      clearInterval(timer);
      look();
      return max;
    },
  };
}

interface Window {
  latencies: number[];
  errors: number;
  from: string;
  to: string;
  /** What the running archiver reported (`/health`'s lag), sampled every 100 ms. */
  reportedLag: number[];
}

export async function benchWal(bench: Bench, deps: WalDeps): Promise<void> {
  const { opts } = bench;
  const extra = { WAL_ARCHIVE_ENABLED: 'true', WAL_ARCHIVE_INTERVAL: String(INTERVAL_MS) };
  const svc = serviceEnv(deps.dir, deps.prefix);
  const config = svc.with(extra);
  const live = config.databasePath;
  const windowMs = opts.quick ? 3_000 : 10_000;
  const segmentTarget = opts.quick ? 8 * 2 ** 20 : 100 * 10 ** 6;

  bench.progress(`wal: generating a ${(opts.sizeBytes / 2 ** 20).toFixed(0)} MiB database`);
  const gen = generateDatabase(live, opts.sizeBytes);
  bench.notes.push(
    `WAL archiving's database: ${(gen.bytes / 2 ** 20).toFixed(0)} MiB, ${gen.rows.toLocaleString('en')} executions plus the rest (bench/lib/dbgen.ts), WAL.`,
  );
  deps.atExit(async () => {
    await deletePrefix(REDIS_URL, deps.prefix).catch(() => 0);
  });
  const pageSize = peek(live, (db) => Number(db.pragma('page_size', { simple: true })));
  const catalog = new Catalog(config.catalogPath);
  deps.atExit(() => catalog.close());
  const worker = await WorkerProcess.start({ ...svc.env, ...extra });
  deps.atExit(() => worker.stop());
  const producer = await startProducer(config, createLogger(config, 'producer'));
  deps.atExit(() => producer.close());
  let writer = await Writer.start(live, opts.writerEveryMs);
  deps.atExit(() => writer.stop());

  /** The open generation newer than `after` (and begun at `since` or later), once its snapshot is stored. */
  const snapshotted = (after: number, what: string, since = '') =>
    until(
      what,
      () => {
        const g = catalog.wal.openGeneration();
        return g && g.id > after && g.started_at >= since && g.snapshot_backup_id !== null ? g : undefined;
      },
      opts.quick ? 120_000 : 900_000,
    ).catch((err: Error) => {
      const gens = catalog.wal
        .generations()
        .map((g) => `${g.id} ${g.started_at}–${g.ended_at ?? 'open'} snapshot ${g.snapshot_backup_id} (${g.reason})`);
      throw new Error(`${err.message} (after generation ${after}, begun since ${since || 'any time'}; generations: ${gens.join('; ')})`);
    });
  const setArchiving = (on: boolean) => call(producer.url, 'PUT', '/api/backups/config', { walArchiveEnabled: on });

  const window = async (): Promise<Window> => {
    const reportedLag: number[] = [];
    const lagTimer = setInterval(() => {
      const s = archiverState(catalog);
      if (s && Date.now() - Date.parse(s.at) < 2 * INTERVAL_MS) reportedLag.push(s.lagMs);
    }, 100);
    writer.mark();
    const from = new Date().toISOString();
    await sleep(windowMs);
    const to = new Date().toISOString();
    const s = await writer.take();
    clearInterval(lagTimer);
    if (s.errors) bench.notes.push(`WAL section: writer errors: ${s.errors} (${s.lastError}).`);
    return { latencies: s.latencies, errors: s.errors, from, to, reportedLag };
  };

  // 1–3: the same writer with archiving on and off, alternating, each run a fresh generation.
  const on = { p50: [] as number[], p99: [] as number[], max: [] as number[], slow: [] as number[], reported: [] as number[] };
  const off = { p50: [] as number[], p99: [] as number[], max: [] as number[], slow: [] as number[] };
  const lag = { read: [] as number[], stored: [] as number[], unarchived: 0, framesPerInterval: [] as number[], storeMs: [] as number[] };
  const wal = { used: [] as number[], file: [] as number[] };
  let fileSize = sampleWal(`${live}-wal`);
  let generation = await snapshotted(0, 'the first generation and its snapshot');
  await sleep(2 * INTERVAL_MS);
  for (let run = 0; run < opts.runs; run++) {
    bench.progress(`wal run ${run + 1}/${opts.runs}: writer with archiving on (generation ${generation.id})`);
    const w = await window();
    // The commits at the window's end are shipped by the next syncs.
    await sleep(2 * INTERVAL_MS);
    on.p50.push(percentile(w.latencies, 50));
    on.p99.push(percentile(w.latencies, 99));
    on.max.push(Math.max(...w.latencies));
    on.slow.push(w.latencies.filter((ms) => ms > SLOW_MS).length);
    on.reported.push(w.reportedLag.length ? Math.max(...w.reportedLag) : Number.NaN);
    const l = archiveLag(config.backupDir, live, catalog.wal.segments(generation.id), w);
    lag.read.push(l.readP99);
    lag.stored.push(l.storedP99);
    lag.unarchived += l.unarchived;
    lag.framesPerInterval.push(l.framesPerInterval);
    lag.storeMs.push(...l.storeMs);
    wal.used.push(l.usedMax);

    bench.progress(`wal run ${run + 1}/${opts.runs}: writer with archiving off`);
    await setArchiving(false);
    await until('the archiver letting go of the database', () => catalog.getSetting(LEASE_KEY) === null, 60_000);
    const o = await window();
    off.p50.push(percentile(o.latencies, 50));
    off.p99.push(percentile(o.latencies, 99));
    off.max.push(Math.max(...o.latencies));
    off.slow.push(o.latencies.filter((ms) => ms > SLOW_MS).length);

    await setArchiving(true);
    generation = await snapshotted(generation.id, 'a new generation and its snapshot after archiving was turned on');
    await sleep(2 * INTERVAL_MS);
    wal.file.push(fileSize.stop());
    fileSize = sampleWal(`${live}-wal`);
  }
  fileSize.stop();

  // 4–5: kill -9 of the application at a random moment, the database files deleted, restore to latest.
  // 6: a restore drill just before the kill, the writer paused (at 200 commits a second it would add
  // about 2.5 MB of WAL a second to the generation while the drill runs); 7: a restore to a random
  // moment of the same generation after the restore to latest.
  const rpo = { ms: [] as number[], lost: [] as number[], allowed: [] as number[], bad: [] as string[] };
  const restore = { api: [] as number[], cp: [] as number[], frames: [] as number[], stored: [] as number[], segments: [] as number[] };
  const point: PointResults = { api: [], cp: [], frames: [], stored: [], segments: [], offsets: [], late: [], bad: [], unseen: [] };
  const drills: DrillResults = { http: [], total: [], latest: [], random: [], targets: [], bad: [] };
  const scratch = path.join(deps.dir, 'scratch');
  fs.mkdirSync(scratch, { recursive: true });
  /** cp + sync of `files` into a scratch folder: what copying the same bytes costs on this disk. */
  const cpSync = async (files: string[]) => {
    const dest = path.join(scratch, 'cp');
    fs.mkdirSync(dest, { recursive: true });
    const ref = await runShell('d=$1; shift; cp -- "$@" "$d"/ && sync -- "$d"/*', [dest, ...files], 3_600_000);
    fs.rmSync(dest, { recursive: true, force: true });
    if (ref.code !== 0) throw new Error(`cp failed: ${ref.stderr}`);
    return ref.ms;
  };
  /** When the application was not committing (the first run's writer has run all along before). */
  const quiet: { from: number; to: number }[] = [];
  /** Starts the writer again after a pause that began at `from`. */
  const resume = async (from: number) => {
    writer = await Writer.start(live, opts.writerEveryMs);
    // Its first commit comes a little after it is started.
    quiet.push({ from, to: Date.now() + 500 });
    await sleep(2 * INTERVAL_MS);
  };
  let stoppedAt = 0;
  for (let run = 0; run < opts.runs; run++) {
    if (run > 0) await resume(stoppedAt);
    bench.progress(`wal crash run ${run + 1}/${opts.runs}: writing ${(segmentTarget / 2 ** 20).toFixed(0)} MiB of WAL`);
    await bulkWrite(live, gen.rows, segmentTarget, () => shippedBytes(catalog.wal.segments(generation.id)));

    bench.progress(`wal crash run ${run + 1}/${opts.runs}: restore drill (POST /api/recovery-window/drill), the writer paused`);
    await writer.stop();
    const paused = Date.now();
    const d = await call(producer.url, 'POST', '/api/recovery-window/drill', {});
    const drill = (d.body as { drill: DrillOutcome }).drill;
    const latestTarget = drill.targets.find((t) => t.kind === 'latest');
    const randomTarget = drill.targets.find((t) => t.kind === 'random');
    drills.http.push(d.ms);
    drills.total.push(Date.parse(drill.completedAt) - Date.parse(drill.startedAt));
    drills.latest.push(latestTarget?.durationMs ?? Number.NaN);
    drills.random.push(randomTarget?.durationMs ?? Number.NaN);
    drills.targets.push(
      drill.targets
        .map(
          (t) =>
            `${t.kind} gen ${t.generation ?? '—'}, ${t.segmentsApplied} segments, ${t.rowCounts?.compared ? 'counts compared' : `counts not compared (${t.rowCounts?.note ?? 'random point'})`}`,
        )
        .join('; '),
    );
    if (!drill.ok) drills.bad.push(`run ${run + 1}: drill ${drill.id} failed: ${drill.reason}`);
    if (latestTarget?.generation !== generation.id)
      drills.bad.push(
        `run ${run + 1}: the drill's latest target restored generation ${latestTarget?.generation}, expected ${generation.id}`,
      );
    await resume(paused);

    await sleep(INTERVAL_MS * (1 + 2 * Math.random()));
    await writer.crash();
    stoppedAt = Date.now();
    const last = peek(live, (db) => {
      const c = lastCommit(db)!;
      const recent = db
        .prepare(`SELECT count(*) AS n FROM audit_log WHERE action = 'transfer' AND at > ?`)
        .get(new Date(Date.parse(c.at) - INTERVAL_MS - 500).toISOString()) as { n: number };
      return { ...c, allowed: recent.n };
    });
    await sleep(2 * INTERVAL_MS);
    const segments = catalog.wal.segments(generation.id);
    const snapshot = catalog.getBackup(generation.snapshot_backup_id!)!;
    for (const f of [live, `${live}-wal`, `${live}-shm`]) fs.rmSync(f, { force: true });

    bench.progress(`wal crash run ${run + 1}/${opts.runs}: restore to latest (${segments.length} segments)`);
    const segmentFile = (s: WalSegmentRow) => path.join(config.backupDir, WAL_FOLDER, s.file_name);
    restore.cp.push(await cpSync([snapshot.file_path, ...segments.map(segmentFile)]));

    const latestStarted = new Date().toISOString();
    const res = await call(producer.url, 'POST', '/api/restores', { to: 'latest' });
    const answer = res.body.wal as { generation: number; segmentsApplied: number };
    if (answer.generation !== generation.id || answer.segmentsApplied !== segments.length) {
      rpo.bad.push(
        `run ${run + 1} restored generation ${answer.generation} with ${answer.segmentsApplied} segments, expected ${generation.id} with ${segments.length}`,
      );
    }
    restore.api.push(res.ms);
    restore.frames.push(shippedBytes(segments));
    restore.stored.push(segments.reduce((sum, s) => sum + s.size_bytes, 0) + (snapshot.file_size_bytes ?? 0));
    restore.segments.push(segments.length);

    const back = peek(live, (db) => ({
      last: lastCommit(db),
      balance: db.prepare('SELECT sum(balance) AS b, count(*) AS n FROM accounts').get() as { b: number; n: number },
    }));
    if (back.balance.b !== back.balance.n * START_BALANCE) rpo.bad.push(`run ${run + 1}: the balances add up to ${back.balance.b}`);
    const lost = last.id - (back.last?.id ?? 0);
    rpo.lost.push(lost);
    rpo.allowed.push(last.allowed);
    rpo.ms.push(lost > 0 && back.last ? Date.parse(last.at) - Date.parse(back.last.at) : 0);

    // A random moment of the generation just restored (its snapshot plus the bulk writes), with the
    // restored database live: the same safety as every restore, so a safety backup of it first.
    const restored = await snapshotted(generation.id, 'the generation after the restore to latest and its snapshot', latestStarted);
    const span = recoveryWindow(catalog).generations.find((g) => g.id === generation.id);
    if (!span) throw new Error(`wal: generation ${generation.id} is not in the recovery window after the restore to latest`);
    const at = new Date(Date.parse(span.start) + Math.floor(Math.random() * (Date.parse(span.end) - Date.parse(span.start))));
    bench.progress(`wal crash run ${run + 1}/${opts.runs}: restore to ${at.toISOString()} (window ${span.start} – ${span.end})`);
    const pointStarted = new Date().toISOString();
    const p = await call(producer.url, 'POST', '/api/restores', { to: at.toISOString() });
    const pw = p.body.wal as { generation: number; segmentsApplied: number; restoredTo: string | null };
    const applied = segments.slice(0, pw.segmentsApplied);
    point.api.push(p.ms);
    point.cp.push(await cpSync([snapshot.file_path, ...applied.map(segmentFile)]));
    point.frames.push(shippedBytes(applied));
    point.stored.push(applied.reduce((sum, s) => sum + s.size_bytes, 0) + (snapshot.file_size_bytes ?? 0));
    point.segments.push(pw.segmentsApplied);
    point.offsets.push((Date.parse(at.toISOString()) - Date.parse(span.start)) / 1000);
    if (pw.generation !== generation.id)
      point.bad.push(`run ${run + 1} restored generation ${pw.generation} for ${at.toISOString()}, expected ${generation.id}`);
    // Exact to within two intervals: nothing stamped after the moment, everything stamped two intervals before it.
    const then = peek(live, (db) => ({
      last: lastCommit(db),
      balance: db.prepare('SELECT sum(balance) AS b, count(*) AS n FROM accounts').get() as { b: number; n: number },
    }));
    if (then.balance.b !== then.balance.n * START_BALANCE) point.bad.push(`run ${run + 1}: the balances add up to ${then.balance.b}`);
    if (then.last && then.last.at > at.toISOString())
      point.bad.push(`run ${run + 1}: a transfer stamped ${then.last.at} is present after a restore to ${at.toISOString()}`);
    const behind = then.last ? Date.parse(at.toISOString()) - Date.parse(then.last.at) : Number.NaN;
    point.late.push(behind);
    // The application commits every few ms: while it ran, a commit two intervals old is archived.
    const writing = quiet.every((q) => q.to < at.getTime() - 2 * INTERVAL_MS || q.from > at.getTime());
    if (writing && !(behind <= 2 * INTERVAL_MS))
      point.bad.push(`run ${run + 1}: the last transfer restored is ${behind} ms before ${at.toISOString()}, more than two intervals`);

    if (run < opts.runs - 1) {
      // The archiver ends its generation when it sees a restore in progress at the top of its loop; a
      // restore shorter than its interval can go unseen, and the generation then carries on across it.
      const pointDone = Date.now();
      const next = await until(
        'a generation after the restore to a moment and its snapshot, or the archiver carrying on past it',
        () => {
          const g = catalog.wal.openGeneration();
          if (g && g.id > restored.id && g.started_at >= pointStarted && g.snapshot_backup_id !== null) return g;
          const s = archiverState(catalog);
          return g?.id === restored.id &&
            s?.generation === restored.id &&
            s.lastSyncAt &&
            Date.parse(s.lastSyncAt) > pointDone + 3 * INTERVAL_MS
            ? g
            : undefined;
        },
        opts.quick ? 120_000 : 900_000,
      );
      if (next.id === restored.id)
        point.unseen.push(
          `run ${run + 1}: the archiver did not see the restore to a moment (${(p.ms / 1000).toFixed(1)} s) and carried generation ${next.id} on across it`,
        );
      generation = next;
    }
  }

  pushRows(bench, { on, off, lag, wal, rpo, restore, point, drills, pageSize, windowMs });
}

interface PointResults {
  api: number[];
  cp: number[];
  frames: number[];
  stored: number[];
  segments: number[];
  /** Seconds from the generation's start to the moment asked for. */
  offsets: number[];
  /** How long before the moment the last restored transfer was stamped. */
  late: number[];
  bad: string[];
  /** Restores the archiver did not see: its generation went on across them instead of ending. */
  unseen: string[];
}

interface DrillResults {
  /** POST /api/recovery-window/drill, queued to the worker and waited for. */
  http: number[];
  /** The drill's own started → completed: both restores, their integrity_checks, row counts. */
  total: number[];
  /** The latest target's restore (the RTO the drill records). */
  latest: number[];
  random: number[];
  targets: string[];
  bad: string[];
}

/** Bytes of WAL frames the segments hold (before compression). */
const shippedBytes = (segments: WalSegmentRow[]) => segments.reduce((sum, s) => sum + s.last_offset - s.first_offset, 0);

/**
 * Writes about `bytes` of WAL beside the application's writer: transactions that touch a run of
 * `executions` rows (about 80 pages each), paced so the archiver ships as it goes, until the
 * generation's segments hold that much.
 */
async function bulkWrite(file: string, rows: number, bytes: number, shipped: () => number): Promise<void> {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 60000');
    const touch = db.prepare('UPDATE executions SET duration_ms = duration_ms + 1 WHERE id > ? AND id <= ?');
    const start = shipped();
    let id = Math.floor(Math.random() * rows);
    const deadline = Date.now() + 600_000;
    // The archive runs an interval or so behind: stop once what is shipped plus 1.5 s of the recent
    // pace reaches the goal, then let it catch up.
    const seen: { at: number; bytes: number }[] = [];
    for (;;) {
      const now = Date.now();
      const done = shipped() - start;
      seen.push({ at: now, bytes: done });
      while (seen.length > 1 && now - seen[0]!.at > 2_000) seen.shift();
      const pace = seen.length > 1 ? (done - seen[0]!.bytes) / (now - seen[0]!.at) : 0;
      if (done + pace * 1_500 >= bytes) break;
      if (now > deadline) throw new Error('wal: the archiver did not ship the bulk writes within 10 minutes');
      if (id >= rows) id = 0;
      touch.run(id, id + 1_000);
      id += 1_000;
      await sleep(25);
    }
  } finally {
    db.close();
  }
  const deadline = Date.now() + 60_000;
  const before = shipped();
  await sleep(3 * INTERVAL_MS);
  while (shipped() === before && Date.now() < deadline) await sleep(100);
}

/**
 * Lag per commit of the window: from its time stamp (taken in its transaction) to the `read_at` of
 * the first segment read after it, and to when that segment's file was written. Commits are
 * matched to segments by time; a commit that finished while its sync was reading may be counted
 * one segment early, which only makes a short lag shorter.
 */
function archiveLag(backupDir: string, live: string, segments: WalSegmentRow[], w: Window) {
  const commits = peek(live, (db) =>
    (
      db.prepare(`SELECT at FROM audit_log WHERE action = 'transfer' AND at >= ? AND at <= ? ORDER BY id`).all(w.from, w.to) as {
        at: string;
      }[]
    ).map((r) => Date.parse(r.at)),
  );
  const segs = segments.map((s) => ({
    read: Date.parse(s.read_at),
    stored: fs.statSync(path.join(backupDir, WAL_FOLDER, s.file_name)).mtimeMs,
    frames: s.frames,
  }));
  const read: number[] = [];
  const stored: number[] = [];
  let unarchived = 0;
  let k = 0;
  for (const c of commits) {
    while (k < segs.length && segs[k]!.read < c) k++;
    const s = segs[k];
    if (!s) {
      unarchived++;
      continue;
    }
    read.push(s.read - c);
    stored.push(Math.max(s.read, s.stored) - c);
  }
  const inWindow = segments.filter((s) => Date.parse(s.read_at) >= Date.parse(w.from) && Date.parse(s.read_at) <= Date.parse(w.to));
  const frames = inWindow.reduce((sum, s) => sum + s.frames, 0);
  const stores = inWindow.map((s) => fs.statSync(path.join(backupDir, WAL_FOLDER, s.file_name)).mtimeMs - Date.parse(s.read_at));
  return {
    readP99: percentile(read, 99),
    storedP99: percentile(stored, 99),
    unarchived,
    framesPerInterval: (frames / (Date.parse(w.to) - Date.parse(w.from))) * INTERVAL_MS,
    // mtime has the kernel's coarse clock: a few ms early at times.
    storeMs: stores.map((ms) => Math.max(0, ms)),
    /**
     * How far into the `-wal` file the committed frames reached before the WAL started afresh,
     * over the WALs begun in the window (one begun before it may have grown under the snapshot).
     */
    usedMax: Math.max(
      0,
      ...inWindow
        .filter((s) => inWindow.some((t) => t.salt1 === s.salt1 && t.salt2 === s.salt2 && t.first_offset === WAL_HEADER_SIZE))
        .map((s) => s.last_offset),
    ),
  };
}

interface Results {
  on: { p50: number[]; p99: number[]; max: number[]; slow: number[]; reported: number[] };
  off: { p50: number[]; p99: number[]; max: number[]; slow: number[] };
  wal: { used: number[]; file: number[] };
  lag: { read: number[]; stored: number[]; unarchived: number; framesPerInterval: number[]; storeMs: number[] };
  rpo: { ms: number[]; lost: number[]; allowed: number[]; bad: string[] };
  restore: { api: number[]; cp: number[]; frames: number[]; stored: number[]; segments: number[] };
  point: PointResults;
  drills: DrillResults;
  pageSize: number;
  windowMs: number;
}

function pushRows(bench: Bench, r: Results): void {
  const { on, off, lag, rpo, restore, point, drills } = r;
  const every = bench.opts.writerEveryMs;
  const rows: Row[] = [];
  const onName = `worker archiving, WAL_ARCHIVE_INTERVAL=${INTERVAL_MS}`;
  const offName = 'worker running, archiving off';
  for (const q of ['p50', 'p99', 'max'] as const) {
    rows.push({ section: SECTION, measure: `writer commit ${q} (every ${every} ms)`, method: offName, unit: 'ms', values: off[q] });
    const ratio = median(on[q]) / median(off[q]);
    rows.push({
      section: SECTION,
      measure: `writer commit ${q} (every ${every} ms)`,
      method: onName,
      unit: 'ms',
      values: on[q],
      ratio: { value: ratio, to: 'archiving off' },
      ...(q === 'p99' ? { target: { met: ratio <= 1.2, text: `≤ 1.2× archiving off (is ${ratio.toFixed(2)}×)` } } : {}),
    });
  }
  const lagTarget = (values: number[]) => {
    const m = median(values);
    return { met: m <= 2 * INTERVAL_MS && lag.unarchived === 0, text: `≤ 2× the interval, ${2 * INTERVAL_MS} ms (is ${m.toFixed(0)} ms)` };
  };
  const unarchived = lag.unarchived ? { failures: `${lag.unarchived} commits of the windows never archived` } : {};
  rows.push({
    section: SECTION,
    measure: 'archive lag p99 per commit',
    method: 'commit → read into a segment (read_at)',
    unit: 'ms',
    values: lag.read,
    target: lagTarget(lag.read),
    ...unarchived,
  });
  rows.push({
    section: SECTION,
    measure: 'archive lag p99 per commit',
    method: 'commit → segment file written (its mtime)',
    unit: 'ms',
    values: lag.stored,
    target: lagTarget(lag.stored),
  });
  rows.push({
    section: SECTION,
    measure: 'archive lag, largest reported',
    method: "the archiver's own lagMs (/health), sampled every 100 ms",
    unit: 'ms',
    values: on.reported.filter(Number.isFinite),
  });
  const mib = (b: number[]) => b.map((x) => x / 2 ** 20);
  const perInterval = median(lag.framesPerInterval);
  const bound = WAL_HEADER_SIZE + (CHECKPOINT_FRAMES + perInterval) * (r.pageSize + 24);
  const usedMax = Math.max(...r.wal.used);
  const fileMax = Math.max(...r.wal.file);
  rows.push({
    section: SECTION,
    measure: '-wal file, largest size on disk',
    method: 'sampled every 20 ms over each run: windows, archiving turned off and on, the new snapshot',
    unit: 'MiB',
    values: mib(r.wal.file),
  });
  rows.push({
    section: SECTION,
    measure: "-wal, farthest a segment's end offset reached",
    method: `${onName}, steady writer, WALs begun in the window`,
    unit: 'MiB',
    values: mib(r.wal.used),
  });
  const m = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  bench.notes.push(
    `The -wal bound documented in docs/wal-archiving.md is about ${CHECKPOINT_FRAMES} pages + one interval's writes: here ` +
      `${perInterval.toFixed(0)} frames an interval of ${r.pageSize + 24} bytes, so ${m(bound)}. Measured: the file reached ${m(fileMax)}, ` +
      `the committed frames in steady state reached ${m(usedMax)} into it (${((usedMax - WAL_HEADER_SIZE) / (r.pageSize + 24) / perInterval).toFixed(1)} intervals of writes). ` +
      'The checkpoint becomes due after the store that passes the threshold and is finished at the next sync point, so the WAL can run to ' +
      `${CHECKPOINT_FRAMES} pages + two intervals' writes before it starts afresh: ${m(WAL_HEADER_SIZE + (CHECKPOINT_FRAMES + 2 * perInterval) * (r.pageSize + 24))} here.`,
  );
  const allowedText = rpo.lost.map((l, i) => `${l}/${rpo.allowed[i]}`).join(', ');
  const rpoMet = rpo.bad.length === 0 && rpo.lost.every((l, i) => l >= 0 && l <= rpo.allowed[i]!);
  rows.push({
    section: SECTION,
    measure: 'RPO: time of commits lost to kill -9 + files deleted',
    method: 'application killed at a random moment, restore to latest 2 intervals later',
    unit: 'ms',
    values: rpo.ms,
    target: {
      met: rpoMet,
      text: `lost ≤ the commits of the last ${INTERVAL_MS} ms + 0.5 s (rows lost/allowed per run: ${allowedText})${rpo.bad.length ? `; ${rpo.bad.join('; ')}` : ''}`,
    },
  });
  const ratio = median(restore.api) / median(restore.cp);
  rows.push({
    section: SECTION,
    measure: 'restore to latest, database files gone',
    method: 'POST /api/restores {"to":"latest"} (verify snapshot + replay + integrity_check + copy in)',
    unit: 'ms',
    values: restore.api,
    ratio: { value: ratio, to: 'cp+sync' },
  });
  rows.push({
    section: SECTION,
    measure: 'restore to latest, database files gone',
    method: 'cp + sync of the snapshot and segment files',
    unit: 'ms',
    values: restore.cp,
  });
  const pointRatio = median(point.api) / median(point.cp);
  rows.push({
    section: SECTION,
    measure: 'restore to a random moment of the same generation',
    method: 'POST /api/restores {"to":"<ISO>"} (safety backup + verify snapshot + replay to the moment + integrity_check + copy in)',
    unit: 'ms',
    values: point.api,
    ratio: { value: pointRatio, to: 'cp+sync' },
    target: {
      met: point.bad.length === 0,
      text: `nothing after the moment, its last commit ≤ 2 intervals before it, balances add up${point.bad.length ? `; ${point.bad.join('; ')}` : ''}`,
    },
  });
  rows.push({
    section: SECTION,
    measure: 'restore to a random moment of the same generation',
    method: 'cp + sync of the snapshot and the segments replayed',
    unit: 'ms',
    values: point.cp,
  });
  const drillTarget = { met: drills.bad.length === 0, text: `both targets passed${drills.bad.length ? `; ${drills.bad.join('; ')}` : ''}` };
  rows.push({
    section: SECTION,
    measure: 'restore drill of the same generation',
    method: 'POST /api/recovery-window/drill, answered (worker job: latest + random moment into temp files, integrity_check of each)',
    unit: 'ms',
    values: drills.http,
    target: drillTarget,
  });
  rows.push({
    section: SECTION,
    measure: 'restore drill of the same generation',
    method: "the drill's started → completed",
    unit: 'ms',
    values: drills.total,
  });
  rows.push({
    section: SECTION,
    measure: 'restore drill of the same generation',
    method: 'its latest target alone: the RTO it records (verify snapshot + replay + integrity_check + copy to a file)',
    unit: 'ms',
    values: drills.latest,
  });
  rows.push({
    section: SECTION,
    measure: 'restore drill of the same generation',
    method: 'its random-moment target alone',
    unit: 'ms',
    values: drills.random,
  });
  bench.rows.push(...rows);
  bench.notes.push(
    `WAL archiving: windows of ${(r.windowMs / 1000).toFixed(0)} s with a writer committing every ${every} ms, alternating archiving on and off ` +
      '(turned on again through PUT /api/backups/config, which begins a new generation with a fresh snapshot; windows start once it is stored). ' +
      `Commit → stored includes zstd and the fsync of the segment; storing took a median ${median(lag.storeMs).toFixed(0)} ms, at most ${Math.max(...lag.storeMs).toFixed(0)} ms. ` +
      `Commits slower than ${SLOW_MS} ms per window: ${on.slow.join(', ')} with archiving, ${off.slow.join(', ')} without. ` +
      "The -wal file is never truncated in steady state (SQLite writes a WAL started afresh from its top), so its size on disk is the largest extent since it was last truncated; a snapshot backup's read transaction keeps the WAL from starting afresh while it runs. " +
      `Restores replayed ${restore.segments.join(', ')} segments holding ${restore.frames.map(m).join(', ')} of WAL frames; ` +
      `snapshot plus segments as stored: ${restore.stored.map(m).join(', ')}.`,
  );
  bench.notes.push(
    `Restore to a moment: drawn evenly from the generation's span (its snapshot to its last sync), ${point.offsets.map((s) => `${s.toFixed(1)} s`).join(', ')} into it; ` +
      `replayed ${point.segments.join(', ')} segments holding ${point.frames.map(m).join(', ')} of WAL frames; snapshot plus those segments as stored: ${point.stored.map(m).join(', ')}. ` +
      `The last restored transfer was stamped ${point.late.map((ms) => (Number.isFinite(ms) ? `${ms} ms` : '—')).join(', ')} before the moment (the two-interval bound is checked only where the writer ran through the two intervals before it, not across its pause for the drill). ` +
      'The restored latest database was live, so the restore took a safety backup of it first (the restore to latest, over deleted files, had none).' +
      (point.unseen.length ? ` Not seen by the archiver: ${point.unseen.join('; ')}.` : ''),
  );
  bench.notes.push(
    `Restore drills (one per run, after the bulk writes, the writer paused, the archiver running): ${drills.targets.join(' | ')}.`,
  );
}
