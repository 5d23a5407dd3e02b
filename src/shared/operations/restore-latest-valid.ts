import type { BackupRow } from '../catalog/catalog.js';
import { NoValidBackup, type SkippedBackup } from '../domain/errors.js';
import { throwIfCancelled } from '../jobs/cancel.js';
import { withLease } from '../locking/lease.js';
import { verifyAndRecord } from '../verify/verify.js';
import { restoreLocked, type RestoreOutcome } from './restore-one.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

export interface LatestValidOutcome extends RestoreOutcome {
  backupId: number;
  /** Newer backups passed over, each with the verification failure that ruled it out. */
  skipped: SkippedBackup[];
}

/**
 * Restores the newest backup that passes full verification. Candidates are verified newest first
 * under the database lock, and the first that passes is restored (which verifies it once more,
 * right before copying). Each candidate passed over keeps its failed verification in the catalog.
 * `candidates` (newest first) defaults to every completed backup, fixed before the first restore
 * step, so the safety backup that restore takes is never one.
 */
export async function restoreLatestValid(deps: OperationDeps, run: LockedRun & { candidates?: BackupRow[] }): Promise<LatestValidOutcome> {
  const { config, catalog } = deps;
  return underDatabaseLock(deps, run, async (lock) => {
    // A rerun of a job that had chosen its backup (and may have copied it in) goes on with that
    // one: choosing again could record one backup and restore another.
    const earlier = catalog.getRestoreByJob(run.runId);
    if (earlier) {
      const row = await restoreLocked(deps, run, earlier.backup_id, lock);
      return { row, backupId: earlier.backup_id, skipped: [], via: lock.via };
    }
    const candidates = run.candidates ?? catalog.completedBackups();
    if (!candidates.length) throw new NoValidBackup([], 'there are no completed backups to restore');
    const skipped: SkippedBackup[] = [];
    for (const backup of candidates) {
      throwIfCancelled(run.signal);
      await run.report.progress(5);
      const verification = await withLease(catalog, backup.id, `${run.runId}:candidate`, () =>
        verifyAndRecord(config, catalog, backup, 'full'),
      );
      if (!verification.valid) {
        skipped.push({ backupId: backup.id, reason: `backup ${backup.id} failed verification: ${verification.message}` });
        run.report.note(`Backup ${backup.id} failed verification; trying the one before it.`);
        continue;
      }
      const row = await restoreLocked(deps, run, backup.id, lock);
      return { row, backupId: backup.id, skipped, via: lock.via };
    }
    throw new NoValidBackup(skipped);
  });
}
