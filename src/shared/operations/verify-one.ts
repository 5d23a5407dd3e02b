import type { BackupRow } from '../catalog/catalog.js';
import { notFound } from '../domain/errors.js';
import { throwIfCancelled } from '../jobs/cancel.js';
import { withLease } from '../locking/lease.js';
import { verifyAndRecord, type VerifyMode, type VerifyResult } from '../verify/verify.js';
import type { OperationDeps, Run } from './run.js';

export type VerifyOutcome =
  | { backup: BackupRow; mode: VerifyMode; completed: true; result: VerifyResult }
  /** Only completed backups are verified; this one is in progress or failed. */
  | { backup: BackupRow; mode: VerifyMode; completed: false; message: string };

/**
 * Verifies one backup and records the result. It only reads, so it takes no database lock and
 * runs beside backups and other verifications; a lease keeps retention from deleting the file
 * under it. Progress: 10 when checking starts, 100 when done.
 */
export async function verifyOne(
  deps: Pick<OperationDeps, 'config' | 'catalog' | 'log'>,
  run: Run & { backupId: number; mode: VerifyMode },
): Promise<VerifyOutcome> {
  const { config, catalog, log } = deps;
  const backup = catalog.getBackup(run.backupId);
  if (!backup) throw notFound(`backup ${run.backupId} does not exist`, 'backup_not_found');
  if (backup.status !== 'completed') {
    return { backup, mode: run.mode, completed: false, message: `backup is ${backup.status}, not completed` };
  }
  // Verifying only reads, so once started it runs to its end: what it records is true either way.
  throwIfCancelled(run.signal);
  return withLease(catalog, backup.id, run.runId, async () => {
    await run.report.progress(10);
    const result = await verifyAndRecord(config, catalog, backup, run.mode);
    await run.report.progress(100);
    log.info({ backupId: backup.id, valid: result.valid, message: result.message }, 'verification finished');
    return { backup, mode: run.mode, completed: true, result };
  });
}
