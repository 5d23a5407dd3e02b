import type { Catalog } from '../catalog/catalog.js';
import type { RestoreDrillRow } from '../catalog/catalog-schema.js';
import type { AlertSender } from '../observability/alerts.js';

/*
 * A restore drill's record: how it went (its targets), its row as the API, `/health` and the CLI
 * show it, its alert, and the last one. Running a drill restores from the archive, so it is a use
 * case above this folder: `runDrill` in operations/restore-drill.ts.
 */

/** How one restore of a drill went. */
export interface DrillTarget {
  kind: 'latest' | 'random';
  /** The moment asked for; null for the latest point. */
  at: string | null;
  ok: boolean;
  generation: number | null;
  /** When the last applied segment was read: the restored database is as of then. */
  restoredTo: string | null;
  segmentsApplied: number;
  /** The restore: snapshot verification, replay, its integrity_check, the copy into the file (the RTO, for the latest point). */
  durationMs: number;
  integrity: string | null;
  /** For the latest point: whether the copy's row counts were compared with the live database, and how they differ. */
  rowCounts?: { compared: boolean; note: string | null; differences: { table: string; restored: number | null; live: number | null }[] };
  reason: string | null;
}

export interface DrillOutcome {
  id: number;
  ok: boolean;
  startedAt: string;
  completedAt: string;
  /** The restore time of the latest point: the measured RTO. */
  durationMs: number;
  trigger: string;
  targets: DrillTarget[];
  reason: string | null;
}

/** A drill row as the API, `/health` and the CLI show it. */
export function drillOf(row: RestoreDrillRow): DrillOutcome {
  return {
    id: row.id,
    ok: row.ok === 1,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    durationMs: row.duration_ms,
    trigger: row.trigger,
    targets: JSON.parse(row.targets) as DrillTarget[],
    reason: row.reason,
  };
}

/** The `drill.failed` alert of a failed drill, from the worker or the CLI alike. */
export function alertDrillFailed(alerts: AlertSender, drill: DrillOutcome, where: { queue?: string; jobId?: string } = {}): void {
  alerts.send({
    event: 'drill.failed',
    summary: `restore drill ${drill.id} failed: a restore from the WAL archive would fail or be wrong`,
    reason: drill.reason ?? 'failed',
    ...where,
    data: { drill: drill.id, trigger: drill.trigger, targets: drill.targets },
  });
}

/** The last drill for `/health` and the CLI: when, whether it passed, its RTO, and why not. */
export function lastDrillSummary(catalog: Catalog): { at: string; ok: boolean; durationMs: number; reason: string | null } | null {
  const row = catalog.drills.lastDrill();
  return row ? { at: row.completed_at, ok: row.ok === 1, durationMs: row.duration_ms, reason: row.reason } : null;
}
