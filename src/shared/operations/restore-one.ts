import type { RestoreRow } from '../catalog/catalog.js';
import type { HeldDatabaseLock } from '../locking/acquire.js';
import { restoreBackup } from '../restore/restore.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

export interface RestoreOutcome {
  row: RestoreRow;
  via: HeldDatabaseLock['via'];
}

/** Progress: 25 verified, 60 safety backup taken, 90 copied in, then the check. */
export async function restoreOne(deps: OperationDeps, run: LockedRun & { backupId: number }): Promise<RestoreOutcome> {
  return underDatabaseLock(deps, run, async (lock) => ({ row: await restoreLocked(deps, run, run.backupId, lock), via: lock.via }));
}

/** The restore itself, for a caller that already holds the lock. */
export function restoreLocked(deps: OperationDeps, run: LockedRun, backupId: number, lock: HeldDatabaseLock): Promise<RestoreRow> {
  const { config, catalog, log } = deps;
  return restoreBackup(
    { config, catalog, log },
    {
      backupId,
      jobId: run.runId,
      lock: lock.guard,
      onProgress: run.report.progress,
      signal: run.signal,
      gate: run.gate,
    },
  );
}
