import fs from 'node:fs/promises';
import path from 'node:path';
import { DamagedDatabase, createBackup, type BackupContext } from '../backup/backup.js';
import type { BackupRow, RestoreRow } from '../catalog/catalog.js';
import { safetyJobId } from '../jobs/job-ids.js';
import { AppError, messageOf, notFound, permanentFailure } from '../domain/errors.js';
import { LockLostError, type LockGuard } from '../locking/lock.js';
import { BACKUP_LEASE_MS } from '../locking/lease.js';
import { copyIntoLive, describeDatabase } from '../sqlite/sqlite-ops.js';
import { CancelGate, cancelledError, isCancelled, throwIfCancelled } from '../jobs/cancel.js';
import { removeQuietly } from '../runtime/files.js';
import { readableCopy, restoreCheckMode, verifyAndRecord, type ReadableCopy } from '../verify/verify.js';

export interface RestoreRequest {
  backupId: number;
  /** Names the restore: a rerun of the same job finds its row and does not restore twice. */
  jobId: string;
  lock: LockGuard;
  onProgress?: (percent: number) => Promise<void> | void;
  /**
   * Aborted when the job is cancelled: honoured until the copy into the live database begins
   * writing, which leaves the live database as it was; a copy that has begun runs to its end and
   * is checked and recorded as usual.
   */
  signal?: AbortSignal;
  /**
   * Where the run's cancel is decided (the worker's per-job gate): the copy commits it right before
   * its first write, and from then on a cancel is refused. Without one, the restore has its own.
   */
  gate?: CancelGate;
  /**
   * Builds the database to copy in instead of taking the backup as it is (a replay of the WAL
   * archive onto it): it must hand back a copy it has fully checked.
   */
  prepare?: () => Promise<ReadableCopy>;
}

const now = () => new Date().toISOString();

/** Starts the restore row's note saying where the damaged database it replaced was kept. */
const DAMAGED_NOTE = 'the damaged database was';

/**
 * Restores a backup into the live database while the application keeps running:
 * verify and safety backup (`pre-migration`) at once → copy through SQLite's backup API → quick_check,
 * and on a failure after the safety backup, the safety backup is put back the same way. The
 * caller holds the database lock; the destructive step checks that it still does.
 */
export async function restoreBackup(ctx: BackupContext, req: RestoreRequest): Promise<RestoreRow> {
  const { config, catalog, log } = ctx;
  const progress = async (p: number) => {
    await req.onProgress?.(p);
  };
  const gate = req.gate ?? new CancelGate();
  let row = catalog.beginRestore(req.jobId, req.backupId);
  if (row.status === 'completed' || row.status === 'rolled_back') {
    log.info({ restoreId: row.id }, 'restore already finished by an earlier run of this job');
    return row;
  }
  if (row.restored_at) {
    // An earlier run copied the backup in and died before recording the end: copying again would
    // throw away whatever the application wrote since, so only check and record. A cancel cannot
    // undo that copy: it is refused.
    gate.commit();
    return finish(ctx, row.id, []);
  }
  row = catalog.updateRestore(row.id, { status: 'in_progress', error_message: null });

  const backup = catalog.getBackup(req.backupId);
  if (!backup) throw notFound(`backup ${req.backupId} does not exist`, 'backup_not_found');
  if (backup.status !== 'completed') {
    throw fail(ctx, row.id, permanentFailure('backup_not_restorable', `backup ${backup.id} is ${backup.status}, not completed`));
  }

  const holder = `restore:${req.jobId}`;
  // Where a restore's time goes, for its log: the checks (with the safety backup beside them), then the copy.
  const startedAt = Date.now();
  let checkedAt: number;
  catalog.lease(backup.id, holder, BACKUP_LEASE_MS);
  try {
    throwIfCancelled(req.signal);
    // Steps 1 and 2 run at once, one per core: the verification of the backup (checksum and
    // integrity_check, or quick_check for bytes that passed integrity_check before: see
    // restoreCheckMode) and the safety backup of the live database are independent. The safety
    // backup is published only once the backup has passed (its gate); when the backup fails, the
    // safety backup leaves no file and no row, and nothing destructive (moving a damaged
    // database aside) has happened: as before, a refused backup changes nothing.
    const verified = (async (): Promise<ReadableCopy> => {
      if (req.prepare) {
        try {
          return await req.prepare();
        } catch (err) {
          throw fail(ctx, row.id, err instanceof AppError ? err : permanentFailure('backup_invalid', messageOf(err)));
        }
      }
      const mode = restoreCheckMode(catalog, backup);
      log.info(
        { backupId: backup.id, mode },
        mode === 'full' ? 'verifying the backup in full' : 'checksum and quick_check: these bytes passed integrity_check before',
      );
      const verification = await verifyAndRecord(config, catalog, backup, mode, true);
      if (!verification.valid || !verification.copy) {
        throw fail(ctx, row.id, permanentFailure('backup_invalid', `backup ${backup.id} failed verification: ${verification.message}`));
      }
      return verification.copy;
    })();
    verified.catch(() => undefined);
    let ready: Promise<ReadableCopy> = verified;
    let source: ReadableCopy;
    let damagedAside: string | undefined;
    let damagedCopy: string | undefined;
    let liveUnreadable = false;
    try {
      let liveExists = await fs.access(config.databasePath).then(
        () => true,
        () => false,
      );
      const liveInfo = liveExists ? await describeDatabase(config.databasePath).catch(unlessDamaged) : undefined;
      // A backup with another page size than a WAL live database is copied in rollback mode, which
      // needs the application's connections closed; the copy's thread says so before it writes.
      ready = verified;
      if (liveExists && !liveInfo) {
        liveUnreadable = true;
        liveExists = false;
      }
      if (liveExists && liveInfo && !row.safety_backup_id) {
        // A run that died between taking the safety backup and recording it left it completed.
        const safetyJob = safetyJobId(req.jobId);
        const earlier = catalog.getBackupByJob(safetyJob);
        let safety: BackupRow | undefined;
        try {
          safety =
            earlier?.status === 'completed'
              ? earlier
              : await createBackup(ctx, {
                  type: 'pre-migration',
                  jobId: safetyJob,
                  keepDamaged: true,
                  lock: req.lock,
                  signal: req.signal,
                  gate: ready,
                });
        } catch (err) {
          if (err instanceof DamagedDatabase && err.keptAt) {
            // The database this restore replaces is damaged (the usual reason to restore): its
            // snapshot is no backup to list as good, but its pages are kept, as they were.
            damagedCopy = err.keptAt;
          } else {
            // Pages too damaged to copy: keep the file itself instead, as it is (once the backup
            // has passed, below).
            if (!(err instanceof AppError && err.code === 'database_unreadable')) throw err;
            liveUnreadable = true;
          }
        }
        if (safety) row = catalog.updateRestore(row.id, { safety_backup_id: safety.id });
      }
      source = await ready;
      checkedAt = Date.now();
    } catch (err) {
      // Whichever side failed, the other is settled first so that nothing is left behind; a
      // backup that failed its verification is the reason reported.
      const outcome = await ready.then(
        (copy) => ({ copy }),
        (refused: unknown) => ({ refused }),
      );
      if ('copy' in outcome) await outcome.copy.release();
      if (damagedCopy) await removeQuietly(damagedCopy);
      throw 'refused' in outcome ? outcome.refused : err;
    }
    try {
      throwIfCancelled(req.signal);
      await progress(25);
      if (liveUnreadable) {
        // Moving the live database aside is this restore's point of no return: the application
        // must find a database again, so from here a cancel is refused.
        if (!gate.commit()) throwIfCancelled(req.signal);
        damagedAside = await setDamagedAside(ctx, req.lock, config.databasePath);
      }
      if (damagedAside) catalog.updateRestore(row.id, { error_message: `${DAMAGED_NOTE} moved to ${damagedAside}` });
      if (damagedCopy) catalog.updateRestore(row.id, { error_message: `${DAMAGED_NOTE} copied to ${damagedCopy}` });
      await progress(60);

      // A live database already moved aside is no longer there to leave untouched: the restore
      // goes on, so the application finds a database again (its gate is committed: a cancel is refused).
      const cancel = damagedAside ? undefined : req.signal;
      throwIfCancelled(cancel);
      await req.lock.assertHeld();
      let problems: string[];
      let copiedMs: number;
      try {
        // The thread checks the fence again right before it writes, then commits the gate; it is
        // stopped if the lock is lost or the job cancelled before that, and runs to its end after.
        //
        // Afterwards the live database gets quick_check, not a second integrity_check. The source
        // passed its checksum in this very restore, and integrity_check in it or, for the same
        // bytes, before (or was fully checked by `prepare`), and SQLite's backup API writes its
        // pages unchanged (at the source's page size, the live database taken to rollback mode for
        // a different one). What integrity_check adds
        // over quick_check is comparing every index entry with its table row, which depends only
        // on page contents the copy does not change and which were proven. What the copy itself can break (a short or lost
        // write, a page left behind in the WAL's checkpoint, a failing disk) breaks the page
        // structure, and quick_check reads every page of every b-tree and the freelist to find
        // that. On 1 GiB this is about 2 s instead of about 8 s of a restore's downtime budget.
        ({ problems, copiedMs } = await copyIntoLive(source.path, config.databasePath, config.restoreBusyTimeout, 'quick', {
          ...copyGuard(ctx, req.lock, cancel, gate),
          onCopied: () => catalog.updateRestore(row.id, { restored_at: now() }),
        }));
      } catch (err) {
        // Stopped before its first write (a lost lock, a cancel): the live database is as it was.
        if (!gate.committed) {
          if (err instanceof LockLostError) throw err;
          if (cancel?.aborted) throw cancelledError(cancel);
        }
        if ((err as { code?: string }).code === 'PAGE_SIZE_MISMATCH') {
          throw fail(ctx, row.id, permanentFailure('page_size_mismatch', messageOf(err) + safetyNote(ctx, row.id)));
        }
        // A busy live database refuses the one-step copy before it writes a page, or undoes it
        // uncommitted: nothing changed.
        if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
          const failure = Object.assign(err as Error, { message: messageOf(err) + safetyNote(ctx, row.id) });
          catalog.updateRestore(row.id, { status: 'failed', error_message: failure.message });
          throw failure;
        }
        return rollBack(ctx, req.lock, row.id, `copy failed: ${messageOf(err)}`);
      }
      if (!catalog.getRestore(row.id)?.restored_at) catalog.updateRestore(row.id, { restored_at: now() });
      log.info(
        { restoreId: row.id, checksMs: checkedAt - startedAt, copyMs: Date.now() - checkedAt, copiedMs },
        'backup copied in and checked',
      );
      await progress(90);
      if (problems.length) return rollBack(ctx, req.lock, row.id, `quick_check after restore: ${problems.slice(0, 5).join('; ')}`);
      return finish(ctx, row.id, problems);
    } finally {
      await source.release();
    }
  } catch (err) {
    if (err instanceof LockLostError) throw lockLost(ctx, row.id, err, gate);
    if (isCancelled(err)) throw cancelled(ctx, row.id, err as Error, gate);
    throw err;
  } finally {
    catalog.unlease(backup.id, holder);
  }
}

const copyGuard = (ctx: BackupContext, lock: LockGuard, cancel?: AbortSignal, gate?: CancelGate) => ({
  catalogPath: ctx.config.catalogPath,
  fence: lock.fence,
  signal: cancel && lock.signal ? AbortSignal.any([lock.signal, cancel]) : (cancel ?? lock.signal),
  ...(gate ? { gate } : {}),
});

/**
 * Where the way back is, for the reason of a restore that failed after its safety backup: the
 * operator restores that backup to return to the database as it was before this restore.
 */
function safetyNote(ctx: BackupContext, restoreId: number): string {
  const id = ctx.catalog.getRestore(restoreId)?.safety_backup_id;
  const safety = id ? ctx.catalog.getBackup(id) : undefined;
  return safety ? `; safety backup ${safety.id} (${path.basename(safety.file_path)}) holds the database as it was before this restore` : '';
}

/**
 * What the live database is after a restore stopped by a cancel or a lost lock: unchanged while the
 * copy had not begun, which is the only way these are reached (once it has begun, the copy runs to
 * its end and is checked, or rolled back); said with care should that ever not hold.
 */
const liveAfter = (gate: CancelGate) =>
  gate.committed ? 'the live database may have been changed by this restore' : 'the live database was not changed by this restore';

/** Cancelled before the copy began: the live database was not changed by this restore. */
function cancelled(ctx: BackupContext, restoreId: number, err: Error, gate: CancelGate): Error {
  const note = ctx.catalog.getRestore(restoreId)?.error_message;
  const failure = Object.assign(err, {
    message: `${err.message}; ${liveAfter(gate)}` + (note ? `; ${note}` : '') + safetyNote(ctx, restoreId),
  });
  ctx.catalog.failRestoreInProgress(restoreId, failure.message);
  return failure;
}

/**
 * The lock was lost before the copy began (this holder was paused past it, or its Redis or
 * file lock was taken over): the live database was not changed by this restore, and someone else
 * may have changed it since. Not worth a retry: replaying the restore later could undo their
 * work; whoever still wants it starts it again.
 */
function lockLost(ctx: BackupContext, restoreId: number, err: LockLostError, gate: CancelGate): Error {
  const note = ctx.catalog.getRestore(restoreId)?.error_message;
  const failure = permanentFailure(
    'lock_lost',
    `lock lost: ${err.message}; ${liveAfter(gate)}, which is not retried (start it again if it is still wanted)` +
      (note ? `; ${note}` : '') +
      safetyNote(ctx, restoreId),
  );
  // Only while in progress: a rerun of this job on another worker (this one stalled past
  // JOB_LOCK_DURATION) may own the row by now, and may have finished it.
  ctx.catalog.failRestoreInProgress(restoreId, failure.message);
  return failure;
}

/** A live database that does not open as SQLite: the emergency case, where no safety backup can be taken. */
function unlessDamaged(err: unknown): undefined {
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return undefined;
  throw err;
}

/**
 * Keeps a damaged live database, byte for byte, beside it (with its -wal/-shm, which belong to it
 * and must not be replayed into the restored file), so the restore writes a fresh file. Only
 * reached when the database does not open or cannot be copied, when no application can be using it.
 */
async function setDamagedAside(ctx: BackupContext, lock: LockGuard, live: string): Promise<string> {
  await lock.assertHeld();
  const aside = `${live}.damaged-${now().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    await fs.rename(live + suffix, aside + suffix).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  ctx.log.warn({ database: live, movedTo: aside }, 'the live database is damaged: kept it aside instead of a safety backup');
  return aside;
}

/** Records the failure, with where the safety backup is when one was taken; the error thrown says so too. */
function fail(ctx: BackupContext, restoreId: number, err: Error): Error {
  const note = safetyNote(ctx, restoreId);
  if (note && !err.message.includes(note)) err.message += note;
  ctx.catalog.updateRestore(restoreId, { status: 'failed', completed_at: now(), error_message: err.message });
  return err;
}

async function finish(ctx: BackupContext, restoreId: number, problems: string[]): Promise<RestoreRow> {
  if (problems.length) throw fail(ctx, restoreId, permanentFailure('restore_damaged', problems.join('; ')));
  // A note left by the run (where a damaged database was kept) stays; an earlier run's error goes.
  const note = ctx.catalog.getRestore(restoreId)?.error_message;
  const row = ctx.catalog.updateRestore(restoreId, {
    status: 'completed',
    completed_at: now(),
    error_message: note?.startsWith(DAMAGED_NOTE) ? note : null,
  });
  ctx.log.info({ restoreId, backupId: row.backup_id, safetyBackupId: row.safety_backup_id }, 'restore completed');
  return row;
}

/** Puts the safety backup back after a failed restore and reports both errors. */
async function rollBack(ctx: BackupContext, lock: LockGuard, restoreId: number, reason: string): Promise<never> {
  const { config, catalog, log } = ctx;
  const row = catalog.getRestore(restoreId)!;
  const safety = row.safety_backup_id ? catalog.getBackup(row.safety_backup_id) : undefined;
  if (!safety) {
    const kept = row.error_message?.startsWith(DAMAGED_NOTE) ? `; ${row.error_message}` : '';
    throw fail(ctx, restoreId, permanentFailure('restore_failed', `${reason}; no safety backup to roll back to${kept}`));
  }
  log.error({ restoreId, reason }, 'restore failed; putting the safety backup back');
  const copy = await readableCopy(config, safety, 'restore');
  try {
    // Another holder may own the database by now: then this copy would overwrite its work.
    await lock.assertHeld();
    // The full check here: the safety backup was not checked in this restore the way the backup
    // was, and a rollback is rare enough that its time does not matter.
    const { problems } = await copyIntoLive(copy.path, config.databasePath, config.restoreBusyTimeout, 'full', copyGuard(ctx, lock));
    if (problems.length) throw new Error(`integrity_check after rollback: ${problems.join('; ')}`);
  } catch (err) {
    throw fail(
      ctx,
      restoreId,
      permanentFailure('rollback_failed', `${reason}; rollback to safety backup ${safety.id} also failed: ${messageOf(err)}`),
    );
  } finally {
    await copy.release();
  }
  catalog.updateRestore(restoreId, {
    status: 'rolled_back',
    completed_at: now(),
    error_message: `${reason}; rolled back to safety backup ${safety.id}`,
  });
  throw permanentFailure('restore_rolled_back', `${reason}; the database was rolled back to safety backup ${safety.id}`);
}
