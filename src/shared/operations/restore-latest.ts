import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../domain/errors.js';
import { withLease } from '../locking/lease.js';
import { fsyncPath, removeQuietly } from '../runtime/files.js';
import { restoreBackup } from '../restore/restore.js';
import { GAP_PREFIX } from '../wal/archiver.js';
import { latestReplayable, replayGeneration, type Replayed } from '../wal/replay.js';
import { generationAt } from '../wal/window.js';
import type { RestoreOutcome } from './restore-one.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

/** What a restore to the WAL archive's latest point was made of. */
export interface WalRestoreInfo {
  generation: number;
  snapshotBackupId: number;
  segmentsApplied: number;
  /** When the last applied segment was read from the WAL: the database is as of then. */
  restoredTo: string | null;
  /**
   * For a restore to latest: the generation that began after the one replayed (after a gap) and
   * has no snapshot yet, so commits after `restoredTo` are not in what was restored.
   */
  gapAfter?: { generation: number | null; startedAt: string; reason: string };
}

/**
 * The gap after the generation replayed, when there is one: the first generation after it (no
 * snapshot yet, or latest would have been it), or, before the archiver has begun that one, the
 * gap this generation ended at (`generation` null, `startedAt` when it was found).
 */
function gapAfter(catalog: OperationDeps['catalog'], generationId: number): WalRestoreInfo['gapAfter'] {
  const next = catalog.wal.generations().find((g) => g.id > generationId);
  if (next) return { generation: next.id, startedAt: next.started_at, reason: next.reason };
  const ended = catalog.wal.generation(generationId);
  if (ended?.ended_at && ended.end_reason?.startsWith(GAP_PREFIX)) {
    return { generation: null, startedAt: ended.ended_at, reason: ended.end_reason.slice(GAP_PREFIX.length) };
  }
  return undefined;
}

export interface LatestOutcome extends RestoreOutcome {
  wal: WalRestoreInfo;
}

/** There is no WAL generation with a snapshot: nothing to rebuild the latest point from. */
export class NoWalArchive extends AppError {
  constructor() {
    super('no_wal_archive', 'the WAL archive has no generation with a snapshot to restore from (is WAL_ARCHIVE_ENABLED on?)', true);
  }
}

/** The moment asked for is outside the recovery window (or in a gap of it); the message names the window. */
export class OutsideWindow extends AppError {
  constructor(message: string) {
    super('outside_recovery_window', message, true);
  }
}

/** The generation to replay for a target: the newest for `latest`, the one that reaches a moment otherwise. */
export function generationFor(catalog: OperationDeps['catalog'], at?: Date) {
  if (!at) {
    const generation = latestReplayable(catalog);
    if (!generation) throw new NoWalArchive();
    return generation;
  }
  const found = generationAt(catalog, at);
  if ('problem' in found) throw new OutsideWindow(found.problem);
  return found.generation;
}

/**
 * Restores the database as of the last commit the WAL archive holds (or, with `at`, as of the
 * last archived sync at or before that moment): the newest generation's
 * snapshot, replayed with its segments and checked (`replayGeneration`), then the same path as a
 * backup restore (safety backup of the live database when there is one, copy in through SQLite's
 * backup API, integrity check, rollback on failure). Works when the live database is gone.
 */
export async function restoreLatest(deps: OperationDeps, run: LockedRun & { at?: Date }): Promise<LatestOutcome> {
  const { config, catalog, log } = deps;
  return underDatabaseLock(deps, run, async (lock) => {
    const earlier = catalog.getRestoreByJob(run.runId);
    const generation = earlier
      ? catalog.wal.generations().find((g) => g.snapshot_backup_id === earlier.backup_id)
      : generationFor(catalog, run.at);
    if (!generation || generation.snapshot_backup_id === null) throw new NoWalArchive();
    let replayed: Replayed | undefined;
    const row = await restoreBackup(
      { config, catalog, log },
      {
        backupId: generation.snapshot_backup_id,
        jobId: run.runId,
        lock: lock.guard,
        onProgress: run.report.progress,
        signal: run.signal,
        gate: run.gate,
        prepare: async () => {
          replayed = await replayGeneration(config, catalog, generation, run.at);
          return replayed.copy;
        },
      },
    );
    return {
      row,
      via: lock.via,
      wal: {
        generation: generation.id,
        snapshotBackupId: generation.snapshot_backup_id,
        segmentsApplied: replayed?.segmentsApplied ?? 0,
        restoredTo: replayed?.restoredTo ?? null,
        ...(run.at ? {} : { gapAfter: gapAfter(catalog, generation.id) }),
      },
    };
  });
}

/**
 * Writes the database as of `at` (or the latest archived commit) to a new file, leaving the live
 * database alone: the safe way to look at the past, or to copy one table back. The file must not
 * exist; it is written complete (copied, fsynced) or not at all.
 */
export async function recoverToFile(
  deps: Pick<OperationDeps, 'config' | 'catalog'>,
  run: { runId: string; at?: Date; output: string },
): Promise<WalRestoreInfo & { output: string }> {
  const { config, catalog } = deps;
  const generation = generationFor(catalog, run.at);
  const snapshotId = generation.snapshot_backup_id!;
  return withLease(catalog, snapshotId, `${run.runId}:output`, async () => {
    // Without the database lock: its copies are named `read`, which a lock holder leaves alone.
    const replayed = await replayGeneration(config, catalog, generation, run.at, 'read');
    try {
      const temp = `${run.output}.partial-${process.pid}`;
      try {
        await fs.copyFile(replayed.copy.path, temp, fs.constants.COPYFILE_EXCL);
        await fsyncPath(temp);
        // A link never replaces a file that appeared meanwhile.
        await fs.link(temp, run.output);
        await fsyncPath(path.dirname(path.resolve(run.output)));
      } finally {
        await removeQuietly(temp);
      }
    } finally {
      await replayed.copy.release();
    }
    return {
      generation: generation.id,
      snapshotBackupId: snapshotId,
      segmentsApplied: replayed.segmentsApplied,
      restoredTo: replayed.restoredTo,
      ...(run.at ? {} : { gapAfter: gapAfter(catalog, generation.id) }),
      output: path.resolve(run.output),
    };
  });
}
