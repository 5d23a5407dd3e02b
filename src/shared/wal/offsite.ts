import type { Catalog } from '../catalog/catalog.js';
import { currentSettings } from '../catalog/settings.js';
import type { Config } from '../runtime/config.js';
import { MIRROR } from '../storage/mirror.js';
import { recoveryWindow, type RecoveryWindow } from './window.js';

/** How far a restore from the mirror alone reaches: what losing this host now would lose. */
export interface Offsite {
  /** The latest moment the mirror alone restores to, as this catalog knows it; null when it reaches none. */
  latest: string | null;
  /** Seconds from `latest` to now (one decimal); null when `latest` is. */
  lagSeconds: number | null;
  /** Segments the mirror lacks (every generation). */
  unmirroredSegments: number;
  /** When the first of them, in archive order, was read; null when there is none. */
  oldestUnmirroredAt: string | null;
  /** OFFSITE_LAG_ALERT: a lag beyond it makes `/health` degraded and sends `mirror.lagging`. */
  threshold: number;
}

/**
 * The mirror's reach, from the catalog alone; null without a mirror or with WAL archiving off.
 * The newest generation of the window whose snapshot has a good copy in the mirror reaches its
 * window end when the mirror holds every one of its segments; otherwise the segment before its
 * first missing one (its window start when that is its first), never past its window end. A
 * segment is in the mirror when the catalog says so (`wal_segment.mirrored = 1`).
 */
export function offsiteState(
  config: Config,
  catalog: Catalog,
  now = Date.now(),
  window: RecoveryWindow = recoveryWindow(catalog, now),
): Offsite | null {
  if (!config.mirrorUrl || !currentSettings(config, catalog).walArchiveEnabled) return null;
  const copied = catalog.wal.generationsWithSnapshotCopy(MIRROR);
  let latest: string | null = null;
  for (const g of [...window.generations].reverse()) {
    if (!copied.has(g.id)) continue;
    const missing = catalog.wal.firstUnmirrored(g.id);
    if (!missing) latest = g.end;
    else {
      const before = catalog.wal.readAtBefore(g.id, missing.seq);
      latest = before === null || before < g.start ? g.start : before > g.end ? g.end : before;
    }
    break;
  }
  const unmirrored = catalog.wal.unmirroredSummary();
  return {
    latest,
    lagSeconds: latest === null ? null : Math.max(0, Math.round((now - Date.parse(latest)) / 100) / 10),
    unmirroredSegments: unmirrored.count,
    oldestUnmirroredAt: unmirrored.oldestReadAt,
    threshold: config.offsiteLagAlert,
  };
}

/**
 * The sentence for `/health` and `mirror.lagging`, or null: the lag is past the threshold, or the
 * mirror has reached no moment of the window for longer than the threshold.
 */
export function offsiteProblem(offsite: Offsite | null, window: RecoveryWindow, now = Date.now()): string | null {
  if (!offsite) return null;
  const limit = `OFFSITE_LAG_ALERT is ${offsite.threshold} s`;
  if (offsite.latest === null) {
    if (!window.earliest || now - Date.parse(window.earliest) <= offsite.threshold * 1_000) return null;
    return `a restore from the mirror alone reaches no moment of the recovery window: no generation's snapshot backup has a good copy there (${limit})`;
  }
  if (offsite.lagSeconds! <= offsite.threshold) return null;
  const n = offsite.unmirroredSegments;
  const why =
    n > 0
      ? `${n} segment${n === 1 ? '' : 's'} not copied to the mirror yet, the first read at ${offsite.oldestUnmirroredAt}`
      : offsite.latest === window.latest
        ? 'the mirror holds every segment; the local recovery window reaches no further either'
        : "the newer generations' snapshot backups have no good copy in the mirror";
  return `a restore from the mirror alone reaches ${offsite.latest}, ${offsite.lagSeconds} s ago (${limit}): ${why}`;
}
