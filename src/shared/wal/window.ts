import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import { archiverState } from './archiver-state.js';

/** One generation as a stretch of time a restore can reach. */
export interface WindowGeneration {
  id: number;
  /** The earliest moment it restores to: when its snapshot was covered by the archive. */
  start: string;
  /** The latest: its last stored commit, or the last sync point at which everything before it was stored (for the running one, as the archiver last reported it; for one that ended, as recorded when it ended). */
  end: string;
  snapshotBackupId: number;
  segments: number;
  bytes: number;
  startedAt: string;
  endedAt: string | null;
  /** Why it began. */
  reason: string;
  /**
   * What its last archive verification found: null when never verified; a failed one ends the
   * generation's reach at the last good segment before the first bad one (or removes the
   * generation from the window when its snapshot failed).
   */
  verification: { at: string; ok: boolean; firstBadSeq: number | null; firstBadFile: string | null; reason: string | null } | null;
}

export interface RecoveryWindow {
  /** Oldest first; a gap between two is a stretch no restore can reach. */
  generations: WindowGeneration[];
  earliest: string | null;
  latest: string | null;
  /** Every stretch between two generations (even the seconds a rollover's snapshot takes): no moment in one can be restored to. */
  gaps: { from: string; to: string; reason: string }[];
}

/** The moments the WAL archive can restore to, from the catalog alone. */
export function recoveryWindow(catalog: Catalog, now = Date.now()): RecoveryWindow {
  const all = catalog.wal.generations();
  const open = all.filter((g) => g.ended_at === null).at(-1);
  const state = archiverState(catalog);
  const verified = new Map(catalog.drills.archiveVerifications().map((v) => [v.generation_id, v]));
  const generations: WindowGeneration[] = [];
  for (const g of all) {
    if (g.snapshot_backup_id === null || g.snapshot_at === null) continue;
    if (catalog.getBackup(g.snapshot_backup_id)?.status !== 'completed') continue;
    const v = verified.get(g.id);
    // A snapshot that failed verification leaves nothing of the generation to restore onto.
    if (v && !v.snapshot_ok) continue;
    let end = [g.last_read_at, g.snapshot_at].filter(Boolean).sort().at(-1)!;
    const broken = v && !v.ok && v.bad_seq !== null ? v.bad_seq : null;
    if (broken !== null) {
      // It reaches the last good segment before the first bad one, and no further.
      const good = catalog.wal.segments(g.id).filter((seg) => seg.seq < broken);
      end = [good.at(-1)?.read_at, g.snapshot_at].filter(Boolean).sort().at(-1)!;
    }
    // The running generation reaches the archiver's last sync point, when it reported recently.
    if (broken === null && g.id === open?.id && state && state.generation === g.id && state.lastSyncAt) {
      const storedThrough = new Date(Date.parse(state.at) - state.lagMs).toISOString();
      if (storedThrough > end && now - Date.parse(state.at) < 60_000) end = storedThrough;
    }
    generations.push({
      id: g.id,
      start: g.snapshot_at,
      end,
      snapshotBackupId: g.snapshot_backup_id,
      segments: g.segments,
      bytes: g.bytes,
      startedAt: g.started_at,
      endedAt: g.ended_at,
      reason: g.reason,
      verification: v ? { at: v.verified_at, ok: v.ok === 1, firstBadSeq: v.bad_seq, firstBadFile: v.bad_file, reason: v.reason } : null,
    });
  }
  const gaps = generations.slice(1).map((g, i) => ({ from: generations[i]!.end, to: g.start, reason: g.reason }));
  return { generations, earliest: generations[0]?.start ?? null, latest: generations.at(-1)?.end ?? null, gaps };
}

/**
 * The generation that reaches `iso` (a moment as the catalog writes its times: `toISOString`), or
 * why none does (a sentence naming the window).
 */
export function generationAt(catalog: Catalog, iso: string): { generation: WalGenerationRow } | { problem: string } {
  const window = recoveryWindow(catalog);
  if (!window.generations.length) return { problem: 'the WAL archive has no generation with a snapshot: there is no window to restore to' };
  const found = window.generations.filter((g) => g.start <= iso && iso <= g.end).at(-1);
  if (found) return { generation: catalog.wal.generation(found.id)! };
  const span = `the recovery window is ${window.earliest} to ${window.latest}`;
  if (iso < window.earliest!) return { problem: `${iso} is before the recovery window: ${span}` };
  if (iso > window.latest!) return { problem: `${iso} is after the recovery window: ${span}` };
  const before = window.generations.filter((g) => g.end < iso).at(-1)!;
  const after = window.generations.find((g) => g.start > iso)!;
  return { problem: `${iso} falls in a gap of the WAL archive, between ${before.end} and ${after.start} (${after.reason}); ${span}` };
}
