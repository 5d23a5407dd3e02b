import type { Catalog } from '../catalog/catalog.js';
import { currentSettings } from '../catalog/settings.js';
import type { Config } from '../runtime/config.js';
import { archiverState } from './archiver-state.js';

/** Lag beyond this many intervals makes archiving a problem (`/health` degraded, `wal.lagging`). */
export const LAG_INTERVALS = 10;
/** A generation this old without a covered snapshot makes archiving a problem: the window stops before it. */
const SNAPSHOT_GRACE_MS = 5 * 60_000;

export interface WalStatus {
  enabled: boolean;
  /** Whether an archiver reported within the last ten intervals (plus a few seconds). */
  running: boolean;
  generation: number | null;
  generationStartedAt: string | null;
  /** Seconds since the last point at which every commit was stored. */
  lagSeconds: number | null;
  lagBytes: number | null;
  walBytes: number | null;
  segments: number;
  bytes: number;
  lastSegmentAt: string | null;
  lastGap: { at: string; reason: string } | null;
  /** The sentence for `/health`, or null when archiving is off or well. */
  problem: string | null;
}

/** The WAL archive as `/health`, `/metrics`, the watchdog and the CLI see it, from the catalog alone. */
export function walStatus(config: Config, catalog: Catalog, now = Date.now()): WalStatus {
  const settings = currentSettings(config, catalog);
  const state = archiverState(catalog);
  const generations = catalog.wal.generations();
  const open = generations.filter((g) => g.ended_at === null).at(-1);
  const interval = settings.walArchiveInterval;
  const stale = !state || now - Date.parse(state.at) > LAG_INTERVALS * interval + 5_000;
  const lagSeconds = state && !stale ? Math.round((state.lagMs + (now - Date.parse(state.at))) / 100) / 10 : null;
  const gaps = generations.filter((g, i) => i > 0 && !g.reason.startsWith('rollover'));
  const lastGapGeneration = gaps.at(-1);
  let problem: string | null = null;
  if (settings.walArchiveEnabled) {
    if (state?.notWalMode) problem = state.notWalMode;
    else if (stale) problem = 'WAL archiving is on but no archiver is running: commits since the last archived one are not safe yet';
    else if (lagSeconds !== null && lagSeconds * 1_000 > LAG_INTERVALS * interval)
      problem = `WAL archiving lags ${lagSeconds} s behind the database (more than ${LAG_INTERVALS} intervals of ${interval} ms)`;
    else if (open && open.snapshot_at === null && now - Date.parse(open.started_at) > SNAPSHOT_GRACE_MS)
      // Its segments are stored, but nothing can be restored past the last generation until it has a snapshot.
      problem = `the WAL archive's generation ${open.id} (begun ${open.started_at}: ${open.reason}) has no snapshot yet: moments since then cannot be restored`;
  }
  return {
    enabled: settings.walArchiveEnabled,
    running: !stale,
    generation: open?.id ?? null,
    generationStartedAt: open?.started_at ?? null,
    lagSeconds,
    lagBytes: stale ? null : (state?.lagBytes ?? null),
    walBytes: stale ? null : (state?.walBytes ?? null),
    segments: generations.reduce((n, g) => n + g.segments, 0),
    bytes: generations.reduce((n, g) => n + g.bytes, 0),
    lastSegmentAt: open?.last_read_at ?? null,
    lastGap: lastGapGeneration ? { at: lastGapGeneration.started_at, reason: lastGapGeneration.reason } : null,
    problem,
  };
}
