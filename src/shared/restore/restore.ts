import type { BackupContext } from '../backup/backup.js';
import type { BackupRow, RestoreRow } from '../catalog/catalog.js';
import { notFound, permanentFailure } from '../domain/errors.js';
import { CancelGate, isCancelled, throwIfCancelled } from '../jobs/cancel.js';
import { BACKUP_LEASE_MS } from '../locking/lease.js';
import { LockLostError } from '../domain/errors.js';
import type { LockGuard } from '../locking/lock.js';
import { copyIn, keepDamaged } from './copy-in.js';
import { EarlyCopy, EarlyStart } from './early-copy.js';
import { RestoreRecord } from './restore-record.js';
import { rollBack } from './roll-back.js';
import { prepareBesideSafety, type Checked } from './safety.js';
import { backupSource, type Prepared, type RestoreSource } from './source.js';

export type { Prepared, RestoreSource } from './source.js';

export interface RestoreRequest {
  /** The backup the restore row names: the one restored, or the snapshot a replay starts from. */
  backupId: number;
  /** Names the restore: a rerun of the same job finds its row and does not restore twice. */
  jobId: string;
  lock: LockGuard;
  onProgress?: (percent: number) => Promise<void> | void;
  /**
   * Aborted when the job is cancelled: honoured until the copy into the live database passes its
   * gate (see `gate`), which leaves the live database as it was; a copy past it runs to its end and
   * is checked and recorded as usual.
   */
  signal?: AbortSignal;
  /**
   * Where the run's cancel is decided (the worker's per-job gate): the copy commits it right before
   * its first write (a copy begun early: before the write that commits it), and from then on a
   * cancel is refused. Without one, the restore has its own.
   */
  gate?: CancelGate;
}

/** A restore's end: its row, and what its source made (none when a rerun found it done or copied in). */
export interface Restored<P extends Prepared> {
  row: RestoreRow;
  prepared?: P;
}

/** Restores a backup as it is, verified first: `restoreFrom` with the backup as its source. */
export async function restoreBackup(ctx: BackupContext, req: RestoreRequest): Promise<RestoreRow> {
  return (await restoreFrom(ctx, req, backupSource(ctx))).row;
}

/**
 * Restores into the live database while the application keeps running, in steps: (1) the source
 * made ready and (2) the safety backup (`pre-migration`) of the live database, at once; (3) the
 * copy through SQLite's backup API; (4) quick_check of the result; (5) on a failure after the
 * safety backup, the safety backup put back the same way. The caller holds the database lock; the
 * destructive step checks that it still does. Progress: 25 checked, 60 ready to copy, 90 copied in.
 */
export async function restoreFrom<P extends Prepared>(
  ctx: BackupContext,
  req: RestoreRequest,
  source: RestoreSource<P>,
): Promise<Restored<P>> {
  const { catalog, log } = ctx;
  const gate = req.gate ?? new CancelGate();
  const { record, row } = RestoreRecord.begin(catalog, req.jobId, req.backupId);
  if (row.status === 'completed' || row.status === 'rolled_back') {
    log.info({ restoreId: row.id }, 'restore already finished by an earlier run of this job');
    return { row };
  }
  if (row.restored_at) {
    // An earlier run copied the backup in and died before recording the end: copying again would
    // throw away whatever the application wrote since, so only record. A cancel cannot undo that
    // copy: it is refused.
    gate.commit();
    return { row: completed(ctx, record) };
  }
  record.started();
  const backup = restorable(ctx, record, req.backupId);
  const holder = `restore:${req.jobId}`;
  const startedAt = Date.now();
  catalog.lease(backup.id, holder, BACKUP_LEASE_MS);
  // Where there is no live database and the source's bytes are final before its checks end, the
  // copy begins beside them and commits once they have passed (see EarlyStart, EarlyCopy).
  const start = new EarlyStart((path) => {
    log.info({ restoreId: record.id }, 'copy into the database begun beside the checks');
    return new EarlyCopy(ctx, req.lock, record, path, gate, req.signal);
  });
  try {
    throwIfCancelled(req.signal);
    let checked: Checked<P>;
    try {
      checked = await prepareBesideSafety(ctx, req, record, source, backup, start);
    } catch (err) {
      await start.copy?.drop();
      throw err;
    }
    let early = start.copy;
    const { prepared, live, safetyMs } = checked;
    const checkedAt = Date.now();
    try {
      if (early && (live.unreadable || prepared.copy.path !== early.path)) {
        // The source that passed is another copy (the mirror's): this one goes.
        await early.drop();
        early = undefined;
      }
      throwIfCancelled(req.signal);
      await req.onProgress?.(25);
      // A live database already moved aside is no longer there to leave untouched: the restore
      // goes on, so the application finds a database again (its gate is committed: a cancel is refused).
      const cancel = await keepDamaged(ctx, req.lock, record, live, gate, req.signal);
      await req.onProgress?.(60);
      let copy = early ? await early.commit() : undefined;
      if (!copy || (!copy.copied && copy.untouched)) copy = await copyIn(ctx, req.lock, record, prepared.copy.path, gate, cancel);
      if (!copy.copied) return await rollBack(ctx, req.lock, record, copy.reason);
      // Where a restore's time goes: the source's checks beside the safety backup (and the early
      // copy, when there was one), then the rest of the copy, its checkpoint and the check beside it.
      log.info(
        {
          restoreId: record.id,
          checksMs: checkedAt - startedAt,
          safetyMs,
          early: Boolean(early),
          copyMs: Date.now() - checkedAt,
          copiedMs: copy.copiedMs,
          checkpointMs: copy.checkpointMs,
          checkMs: copy.checkMs,
        },
        'backup copied in and checked',
      );
      await req.onProgress?.(90);
      if (copy.problems.length)
        return await rollBack(ctx, req.lock, record, `quick_check after restore: ${copy.problems.slice(0, 5).join('; ')}`);
      return { row: completed(ctx, record), prepared };
    } finally {
      await prepared.copy.release();
    }
  } catch (err) {
    throw stopped(record, err, gate);
  } finally {
    catalog.unlease(backup.id, holder);
  }
}

/** The backup the row names, which must exist and be completed. */
function restorable(ctx: BackupContext, record: RestoreRecord, backupId: number): BackupRow {
  const backup = ctx.catalog.getBackup(backupId);
  if (!backup) throw notFound(`backup ${backupId} does not exist`, 'backup_not_found');
  if (backup.status !== 'completed') {
    throw record.failed(permanentFailure('backup_not_restorable', `backup ${backup.id} is ${backup.status}, not completed`));
  }
  return backup;
}

function completed(ctx: BackupContext, record: RestoreRecord): RestoreRow {
  const row = record.completed();
  ctx.log.info({ restoreId: row.id, backupId: row.backup_id, safetyBackupId: row.safety_backup_id }, 'restore completed');
  return row;
}

/**
 * What a restore stopped by a cancel or a lost lock reports and records: the live database
 * unchanged while the copy had not begun, which is the only way these are reached (once it has
 * begun, the copy runs to its end and is checked, or rolled back); said with care should that ever
 * not hold. A lost lock is not worth a retry: replaying the restore later could undo the work of
 * whoever holds it now; whoever still wants it starts it again. Other errors go on as they are.
 */
function stopped(record: RestoreRecord, err: unknown, gate: CancelGate): unknown {
  const live = gate.committed
    ? 'the live database may have been changed by this restore'
    : 'the live database was not changed by this restore';
  if (err instanceof LockLostError) {
    const message = record.stopped(`lock lost: ${err.message}; ${live}, which is not retried (start it again if it is still wanted)`);
    return permanentFailure('lock_lost', message);
  }
  if (isCancelled(err)) return Object.assign(err as Error, { message: record.stopped(`${(err as Error).message}; ${live}`) });
  return err;
}
