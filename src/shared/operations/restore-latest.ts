import { AppError } from '../domain/errors.js';
import { restoreBackup } from '../restore/restore.js';
import { latestReplayable, replayGeneration, type Replayed } from '../wal/replay.js';
import type { RestoreOutcome } from './restore-one.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

/** What a restore to the WAL archive's latest point was made of. */
export interface WalRestoreInfo {
  generation: number;
  snapshotBackupId: number;
  segmentsApplied: number;
  /** When the last applied segment was read from the WAL: the database is as of then. */
  restoredTo: string | null;
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

/**
 * Restores the database as of the last commit the WAL archive holds: the newest generation's
 * snapshot, replayed with its segments and checked (`replayGeneration`), then the same path as a
 * backup restore (safety backup of the live database when there is one, copy in through SQLite's
 * backup API, integrity check, rollback on failure). Works when the live database is gone.
 */
export async function restoreLatest(deps: OperationDeps, run: LockedRun): Promise<LatestOutcome> {
  const { config, catalog, log } = deps;
  return underDatabaseLock(deps, run, async (lock) => {
    const earlier = catalog.getRestoreByJob(run.runId);
    const generation = earlier
      ? catalog.wal.generations().find((g) => g.snapshot_backup_id === earlier.backup_id)
      : latestReplayable(catalog);
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
        prepare: async () => {
          replayed = await replayGeneration(config, catalog, generation);
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
      },
    };
  });
}
