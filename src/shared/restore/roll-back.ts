import type { BackupContext } from '../backup/backup.js';
import { messageOf, permanentFailure } from '../domain/errors.js';
import type { LockGuard } from '../locking/lock.js';
import { copyIntoLive } from '../sqlite/sqlite-ops.js';
import { readableCopy } from '../verify/verify.js';
import { copyGuard } from './copy-in.js';
import type { RestoreRecord } from './restore-record.js';

/**
 * Step 5, after a copy that failed or a check that found damage: the safety backup put back the
 * same way, checked in full. Always throws: `restore_rolled_back` with `reason` when the way back
 * worked; `restore_failed` when there was no safety backup; `rollback_failed` when putting it back
 * failed too.
 */
export async function rollBack(ctx: BackupContext, lock: LockGuard, record: RestoreRecord, reason: string): Promise<never> {
  const { config, catalog, log } = ctx;
  const safetyId = record.row.safety_backup_id;
  const safety = safetyId ? catalog.getBackup(safetyId) : undefined;
  if (!safety) {
    const kept = record.damagedNote();
    throw record.failed(permanentFailure('restore_failed', `${reason}; no safety backup to roll back to${kept ? `; ${kept}` : ''}`));
  }
  log.error({ restoreId: record.id, reason }, 'restore failed; putting the safety backup back');
  const copy = await readableCopy(config, safety, 'restore');
  try {
    // Another holder may own the database by now: then this copy would overwrite its work.
    await lock.assertHeld();
    // The full check here: the safety backup was not checked in this restore the way the source
    // was, and a rollback is rare enough that its time does not matter.
    const { problems } = await copyIntoLive(copy.path, config.databasePath, config.restoreBusyTimeout, 'full', copyGuard(ctx, lock));
    if (problems.length) throw new Error(`integrity_check after rollback: ${problems.join('; ')}`);
  } catch (err) {
    throw record.failed(
      permanentFailure('rollback_failed', `${reason}; rollback to safety backup ${safety.id} also failed: ${messageOf(err)}`, err),
    );
  } finally {
    await copy.release();
  }
  record.rolledBack(reason, safety.id);
  throw permanentFailure('restore_rolled_back', `${reason}; the database was rolled back to safety backup ${safety.id}`);
}
