import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { NoWalArchive, OutsideWindow } from '../domain/errors.js';
import type { ArchiveTarget } from '../domain/restore-target.js';
import { latestReplayable } from './replay.js';
import { generationAt } from './window.js';

/**
 * What a restore from the WAL archive replays, decided before anything is done: the generation, its
 * snapshot backup, and the segments to apply onto it, in order.
 */
export interface ArchivePlan {
  target: ArchiveTarget;
  generation: WalGenerationRow;
  snapshotBackupId: number;
  /** Every segment of the generation for `latest`; for a moment, those read at or before it. */
  segments: WalSegmentRow[];
}

/**
 * The plan for a target: the newest replayable generation for `latest`, the one whose window holds
 * the moment otherwise. Refuses with `NoWalArchive` or `OutsideWindow` (naming the window).
 */
export function planArchiveRestore(catalog: Catalog, target: ArchiveTarget): ArchivePlan {
  if (target.kind === 'latest') {
    const generation = latestReplayable(catalog);
    if (!generation) throw new NoWalArchive();
    return planOf(catalog, generation, target);
  }
  const found = generationAt(catalog, target.at);
  if ('problem' in found) throw new OutsideWindow(found.problem);
  return planOf(catalog, found.generation, target);
}

/**
 * The plan of a restore that already chose its snapshot (a rerun of its job finds the backup in its
 * row): that snapshot's generation, whatever the window says now. `NoWalArchive` when it is gone.
 */
export function planForSnapshot(catalog: Catalog, snapshotBackupId: number, target: ArchiveTarget): ArchivePlan {
  const generation = catalog.wal.generations().find((g) => g.snapshot_backup_id === snapshotBackupId);
  if (!generation) throw new NoWalArchive();
  return planOf(catalog, generation, target);
}

function planOf(catalog: Catalog, generation: WalGenerationRow, target: ArchiveTarget): ArchivePlan {
  if (generation.snapshot_backup_id === null) throw new NoWalArchive();
  const all = catalog.wal.segments(generation.id);
  // The catalog writes its times as `MOMENT` does: as strings they compare as the moments do.
  const segments = target.kind === 'moment' ? all.filter((s) => s.read_at <= target.at) : all;
  return { target, generation, snapshotBackupId: generation.snapshot_backup_id, segments };
}
