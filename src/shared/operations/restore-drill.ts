import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { Catalog } from '../catalog/catalog.js';
import type { RestoreDrillRow } from '../catalog/catalog-schema.js';
import { messageOf } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import { ensurePrivateDir, removeQuietly, tempPath } from '../runtime/files.js';
import { integrityProblems } from '../sqlite/sqlite-ops.js';
import { archiverState } from '../wal/archiver-state.js';
import { drillOf, type DrillOutcome, type DrillTarget } from '../wal/drill.js';
import { walStatus } from '../wal/wal-health.js';
import { recoveryWindow } from '../wal/window.js';
import { recoverToFile } from './restore-to-moment.js';

/** Row counts per table of one database. */
type Counts = Record<string, number>;

/** How long the drill waits for the archiver to store what the live database held when it began. */
const CATCH_UP_MS = 10_000;

/**
 * A restore drill: restores the WAL archive's latest point and one random moment of the recovery
 * window, each into a temp file in BACKUP_DIR (never the live database, which it only reads), runs
 * `integrity_check` on each, and compares the latest copy's row counts per table with the live
 * database when that comparison means something (see `liveCounts`). Records the drill in the
 * catalog and returns it; a failed drill is an outcome, not an exception.
 */
export async function runDrill(
  deps: { config: Config; catalog: Catalog },
  opts: { trigger: string; runId: string; random?: () => number; signal?: AbortSignal },
): Promise<DrillOutcome> {
  const { config, catalog } = deps;
  const started = new Date();
  const targets: DrillTarget[] = [];
  const live = openLive(config.databasePath);
  try {
    const before = live ? liveSnapshot(live) : undefined;
    const covered = before ? await archiveCovers(config, catalog, started, opts.signal) : false;
    targets.push(
      await drillTarget(deps, { kind: 'latest', runId: `${opts.runId}-latest` }, (restored) =>
        compareCounts(live, before, covered, restored),
      ),
    );
    opts.signal?.throwIfAborted();
    const at = randomMoment(catalog, opts.random ?? Math.random);
    targets.push(
      at
        ? await drillTarget(deps, { kind: 'random', at, runId: `${opts.runId}-random` })
        : failedTarget('random', null, 'the recovery window is empty: there is no moment to restore to'),
    );
  } finally {
    live?.close();
  }
  const failed = targets.filter((t) => !t.ok);
  const completed = new Date();
  const row: Omit<RestoreDrillRow, 'id'> = {
    started_at: started.toISOString(),
    completed_at: completed.toISOString(),
    ok: failed.length ? 0 : 1,
    duration_ms: Math.round(targets[0]?.durationMs ?? 0),
    trigger: opts.trigger,
    targets: JSON.stringify(targets),
    reason: failed.length ? failed.map((t) => `${t.kind}${t.at ? ` (${t.at})` : ''}: ${t.reason}`).join('; ') : null,
  };
  return drillOf(catalog.drills.recordDrill(row));
}

async function drillTarget(
  deps: { config: Config; catalog: Catalog },
  target: { kind: DrillTarget['kind']; at?: string; runId: string },
  check?: (restored: Counts) => DrillTarget['rowCounts'],
): Promise<DrillTarget> {
  const { config } = deps;
  await ensurePrivateDir(config.backupDir);
  // `read`: a drill holds no database lock, so a lock holder must not take its file for a dead restore's.
  const output = tempPath(config.backupDir, 'read', 'drill');
  const began = performance.now();
  try {
    const info = await recoverToFile(deps, {
      runId: target.runId,
      target: target.at ? { kind: 'moment', at: target.at } : { kind: 'latest' },
      output,
    });
    const durationMs = Math.round(performance.now() - began);
    // Of the file the restore handed over, in a thread of its own (a large database takes a while).
    const checked = await integrityProblems(output, 'full');
    const integrity = checked.length ? checked.slice(0, 5).join('; ') : 'ok';
    const rowCounts = check?.(countsOf(output));
    const problems = [
      ...(integrity === 'ok' ? [] : [`integrity_check of the restored copy: ${integrity}`]),
      ...(rowCounts?.differences.length
        ? [
            `row counts differ from the live database: ${rowCounts.differences
              .map((d) => `${d.table} ${d.restored ?? 'missing'} restored, ${d.live ?? 'missing'} live`)
              .join(', ')}`,
          ]
        : []),
    ];
    return {
      kind: target.kind,
      at: target.at ?? null,
      ok: problems.length === 0,
      generation: info.generation,
      restoredTo: info.restoredTo,
      segmentsApplied: info.segmentsApplied,
      durationMs,
      integrity,
      ...(rowCounts ? { rowCounts } : {}),
      reason: problems.length ? problems.join('; ') : null,
    };
  } catch (err) {
    return { ...failedTarget(target.kind, target.at ?? null, messageOf(err)), durationMs: Math.round(performance.now() - began) };
  } finally {
    await removeQuietly(output, `${output}-wal`, `${output}-shm`);
  }
}

function failedTarget(kind: DrillTarget['kind'], at: string | null, reason: string): DrillTarget {
  return { kind, at, ok: false, generation: null, restoredTo: null, segmentsApplied: 0, durationMs: 0, integrity: null, reason };
}

/** The row count of every table of a restored copy. */
function countsOf(file: string): Counts {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return countRows(db);
  } finally {
    db.close();
  }
}

function countRows(db: Database.Database): Counts {
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as {
    name: string;
  }[];
  const counts: Counts = {};
  for (const { name } of tables) {
    counts[name] = (db.prepare(`SELECT count(*) AS n FROM "${name.replace(/"/g, '""')}"`).get() as { n: number }).n;
  }
  return counts;
}

/** The live database, read-only, or undefined when it cannot be read (gone, damaged). */
function openLive(file: string): Database.Database | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  } catch {
    return undefined;
  }
}

/**
 * The live database's row counts in one read transaction, and its `data_version`: read again on
 * the same connection after the restore, an unchanged value proves no commit happened meanwhile.
 */
function liveSnapshot(db: Database.Database): { counts: Counts; version: number } | undefined {
  try {
    return db.transaction(() => ({ counts: countRows(db), version: Number(db.pragma('data_version', { simple: true })) }))();
  } catch {
    return undefined;
  }
}

/**
 * Whether the archive holds every commit the live database had at `since`: a running archiver
 * reported a sync point after it. Waits a few intervals for it.
 */
async function archiveCovers(config: Config, catalog: Catalog, since: Date, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + CATCH_UP_MS;
  for (;;) {
    const state = archiverState(catalog);
    if (state && Date.parse(state.at) - state.lagMs >= since.getTime()) return true;
    if (!walStatus(config, catalog).running || Date.now() > deadline || signal?.aborted) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Compares the latest copy's row counts with the live database's. They are the same moment only
 * when the archive had stored everything the live database held when the drill began and no
 * commit happened since: otherwise the comparison is skipped, and says why.
 */
function compareCounts(
  live: Database.Database | undefined,
  before: { counts: Counts; version: number } | undefined,
  covered: boolean,
  restored: Counts,
): DrillTarget['rowCounts'] {
  const skipped = (note: string) => ({ compared: false, note, differences: [] });
  if (!live || !before) return skipped('the live database could not be read');
  if (!covered) return skipped('the archive had not stored the live state yet (no archiver running, or lagging)');
  let after: number;
  try {
    after = Number(live.pragma('data_version', { simple: true }));
  } catch {
    return skipped('the live database could not be read again');
  }
  if (after !== before.version) return skipped('the live database changed during the drill');
  const tables = [...new Set([...Object.keys(before.counts), ...Object.keys(restored)])].sort();
  const differences = tables
    .filter((t) => before.counts[t] !== restored[t])
    .map((table) => ({ table, restored: restored[table] ?? null, live: before.counts[table] ?? null }));
  return { compared: true, note: null, differences };
}

/** A moment drawn evenly from the recovery window's generations (never from a gap between them). */
function randomMoment(catalog: Catalog, random: () => number): string | null {
  const spans = recoveryWindow(catalog).generations.map((g) => ({ start: Date.parse(g.start), end: Date.parse(g.end) }));
  if (!spans.length) return null;
  const total = spans.reduce((n, s) => n + (s.end - s.start), 0);
  let pick = random() * total;
  for (const s of spans) {
    const length = s.end - s.start;
    if (pick <= length) return new Date(s.start + Math.floor(pick)).toISOString();
    pick -= length;
  }
  return new Date(spans.at(-1)!.end).toISOString();
}
