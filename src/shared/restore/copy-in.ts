import fs from 'node:fs/promises';
import type { BackupContext } from '../backup/backup.js';
import { codeOf, messageOf, permanentFailure } from '../domain/errors.js';
import { cancelledError, throwIfCancelled, type CancelGate } from '../jobs/cancel.js';
import { LockLostError } from '../domain/errors.js';
import type { LockGuard } from '../locking/lock.js';
import { copyIntoLive, type CopyTimes } from '../sqlite/sqlite-ops.js';
import type { RestoreRecord } from './restore-record.js';
import type { LiveState } from './safety.js';

/**
 * What the copy into the live database came to: checked (with what quick_check found and where its
 * time went), failed after it may have written, or, for a held copy, stopped before it committed
 * (`untouched`: the live database is as it was).
 */
export type CopyOutcome = ({ copied: true; problems: string[] } & CopyTimes) | { copied: false; reason: string; untouched?: true };

/**
 * Step 3's first half: a damaged live database that could not be copied is moved aside, as it is
 * (the restore's point of no return: the application must find a database again, so from here a
 * cancel is refused), and where a damaged one was kept is noted on the row. Returns the signal
 * the copy still honours: none once the live database was moved aside.
 */
export async function keepDamaged(
  ctx: BackupContext,
  lock: LockGuard,
  record: RestoreRecord,
  live: LiveState,
  gate: CancelGate,
  signal: AbortSignal | undefined,
): Promise<AbortSignal | undefined> {
  if (live.damagedCopy) record.damagedKept(`copied to ${live.damagedCopy}`);
  if (!live.unreadable) return signal;
  if (!gate.commit()) throwIfCancelled(signal);
  const aside = await setDamagedAside(ctx, lock, ctx.config.databasePath);
  record.damagedKept(`moved to ${aside}`);
  return undefined;
}

/**
 * Step 3: the source copied into the live database through SQLite's backup API, then step 4, its
 * check. The thread checks the fence again right before it writes, then commits the gate; it is
 * stopped if the lock is lost or the job cancelled before that (thrown: the live database is as it
 * was), and runs to its end after. A backup with another page size than a WAL live database is
 * copied in rollback mode, which needs the application's connections closed; the thread says so
 * before it writes. A copy that failed once it may have written is for the caller to roll back.
 *
 * Afterwards the live database gets quick_check, not a second integrity_check. The source passed
 * its checksum in this very restore, and integrity_check in it or, for the same bytes, before (or
 * was fully checked by its replay), and SQLite's backup API writes its pages unchanged (at the
 * source's page size, the live database taken to rollback mode for a different one). What
 * integrity_check adds over quick_check is comparing every index entry with its table row, which
 * depends only on page contents the copy does not change and which were proven. What the copy
 * itself can break (a short or lost write, a page left behind in the WAL's checkpoint, a failing
 * disk) breaks the page structure, and quick_check reads every page of every b-tree and the
 * freelist to find that. On 1 GiB this is about 2 s instead of about 8 s of a restore's downtime budget.
 */
export async function copyIn(
  ctx: BackupContext,
  lock: LockGuard,
  record: RestoreRecord,
  sourcePath: string,
  gate: CancelGate,
  cancel: AbortSignal | undefined,
  /** Makes it a held copy (see `EarlyCopy`): committed once this resolves, rolled back if it rejects. */
  hold?: Promise<unknown>,
): Promise<CopyOutcome> {
  const { config } = ctx;
  throwIfCancelled(cancel);
  await lock.assertHeld();
  let copied: { problems: string[] } & CopyTimes;
  try {
    copied = await copyIntoLive(sourcePath, config.databasePath, config.restoreBusyTimeout, 'quick', {
      ...copyGuard(ctx, lock, cancel, gate),
      onCopied: () => record.copied(),
      ...(hold ? { hold } : {}),
    });
  } catch (err) {
    // Stopped before its first write (a lost lock, a cancel): the live database is as it was.
    if (!gate.committed) {
      if (err instanceof LockLostError) throw err;
      if (cancel?.aborted) throw cancelledError(cancel);
      // A held copy rolls back whatever it wrote when it stops before committing.
      if (hold) return { copied: false, reason: messageOf(err), untouched: true };
    }
    const code = codeOf(err);
    if (code === 'PAGE_SIZE_MISMATCH') throw record.failed(permanentFailure('page_size_mismatch', messageOf(err), err));
    // A busy live database refuses the one-step copy before it writes a page, or undoes it
    // uncommitted: nothing changed.
    if (code?.startsWith('SQLITE_BUSY')) throw record.refusedBusy(err as Error);
    return { copied: false, reason: `copy failed: ${messageOf(err)}` };
  }
  record.copied();
  return { copied: true, ...copied };
}

/** The copy's guard: the fence it checks before writing, what stops it before then, and the gate it commits. */
export const copyGuard = (ctx: BackupContext, lock: LockGuard, cancel?: AbortSignal, gate?: CancelGate) => ({
  catalogPath: ctx.config.catalogPath,
  fence: lock.fence,
  signal: cancel && lock.signal ? AbortSignal.any([lock.signal, cancel]) : (cancel ?? lock.signal),
  ...(gate ? { gate } : {}),
});

/**
 * Keeps a damaged live database, byte for byte, beside it (with its -wal/-shm, which belong to it
 * and must not be replayed into the restored file), so the restore writes a fresh file. Only
 * reached when the database does not open or cannot be copied, when no application can be using it.
 */
async function setDamagedAside(ctx: BackupContext, lock: LockGuard, live: string): Promise<string> {
  await lock.assertHeld();
  const aside = `${live}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    await fs.rename(live + suffix, aside + suffix).catch((err: unknown) => {
      if (codeOf(err) !== 'ENOENT') throw err;
    });
  }
  ctx.log.warn({ database: live, movedTo: aside }, 'the live database is damaged: kept it aside instead of a safety backup');
  return aside;
}
