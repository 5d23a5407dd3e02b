import { createBackup } from '../backup/backup.js';
import { applyRetention } from '../backup/retention.js';
import type { BackupRow } from '../catalog/catalog.js';
import type { BackupType } from '../domain/backup-types.js';
import { currentSettings } from '../catalog/settings.js';
import type { HeldDatabaseLock } from '../locking/acquire.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

export interface BackupOutcome {
  row: BackupRow;
  /** Backups retention deleted after this one. */
  retentionDeleted: number[];
  via: HeldDatabaseLock['via'];
}

/**
 * Takes a backup now, then applies retention under the same lock. Progress: up to 60 copying,
 * 75 packing, 90 hashing, then the mirror.
 */
export async function backupNow(deps: OperationDeps, run: LockedRun & { type: BackupType }): Promise<BackupOutcome> {
  const { config, catalog, log } = deps;
  return underDatabaseLock(deps, run, async (lock) => {
    const row = await createBackup(
      { config, catalog, log },
      {
        type: run.type,
        jobId: run.runId,
        lock: lock.guard,
        onProgress: run.report.progress,
        onBytes: run.report.bytes,
        signal: run.signal,
      },
    );
    const retentionDeleted = await applyRetention(catalog, currentSettings(config, catalog).maxBackups, log, config);
    return { row, retentionDeleted, via: lock.via };
  });
}
