import fs from 'node:fs/promises';
import { createBackup, type BackupContext } from '../backup/backup.js';
import { DamagedDatabase } from '../domain/errors.js';
import type { BackupRow } from '../catalog/catalog.js';
import { AppError, codeOf } from '../domain/errors.js';
import { safetyJobId } from '../jobs/job-ids.js';
import type { LockGuard } from '../locking/lock.js';
import { removeQuietly } from '../runtime/files.js';
import { describeDatabase } from '../sqlite/sqlite-ops.js';
import type { RestoreRecord } from './restore-record.js';
import type { Prepared, RestoreSource } from './source.js';

/** What the safety backup found of the live database. */
export interface LiveState {
  /**
   * It does not open as SQLite, or its pages are too damaged to copy: no safety backup could be
   * taken, and the file itself is moved aside, as it is, before the copy (`setDamagedAside`).
   */
  unreadable: boolean;
  /** It is damaged but its pages could be copied: where they were kept (no backup to list as good). */
  damagedCopy?: string;
}

/** What the first two steps hand on. */
export interface Checked<P extends Prepared> {
  prepared: P;
  live: LiveState;
  /** How long the safety backup took, from the restore's start to its row. */
  safetyMs: number;
}

/**
 * Steps 1 and 2, at once, one per core: the source made ready (`source.prepare`: a backup
 * verified, or the WAL archive replayed) and the safety backup of the live database are
 * independent. The safety backup is published only once the source has passed (its gate); when the
 * source fails, the safety backup leaves no file and no row, and nothing destructive (moving a
 * damaged database aside) has happened: a refused source changes nothing. Whichever side failed,
 * the other is settled first so that nothing is left behind; a source that failed is the reason
 * reported.
 */
export async function prepareBesideSafety<P extends Prepared>(
  ctx: BackupContext,
  req: { jobId: string; lock: LockGuard; signal?: AbortSignal },
  record: RestoreRecord,
  source: RestoreSource<P>,
  backup: BackupRow,
  /** Told what an early copy waits for (`EarlyStart`): the source's bytes final, no live database. */
  early?: { bytesFinal: (path: string) => void; noLiveDatabase: () => void },
): Promise<Checked<P>> {
  const started = Date.now();
  const ready = source.prepare(backup, (err) => record.failed(err), early?.bytesFinal);
  ready.catch(() => undefined);
  let live: LiveState = { unreadable: false };
  try {
    live = await safetyBackup(ctx, req, record, ready, early?.noLiveDatabase);
    const safetyMs = Date.now() - started;
    return { prepared: await ready, live, safetyMs };
  } catch (err) {
    const outcome = await ready.then(
      (prepared) => ({ prepared }),
      (refused: unknown) => ({ refused }),
    );
    if ('prepared' in outcome) await outcome.prepared.copy.release();
    if (live.damagedCopy) await removeQuietly(live.damagedCopy);
    throw 'refused' in outcome ? outcome.refused : err;
  }
}

/**
 * The safety backup (`pre-migration`) of the live database, published once `gate` resolves. None
 * when there is no live database, when the row already names one, or when the live database is
 * damaged (then what `LiveState` says).
 */
async function safetyBackup(
  ctx: BackupContext,
  req: { jobId: string; lock: LockGuard; signal?: AbortSignal },
  record: RestoreRecord,
  gate: Promise<unknown>,
  /** Told when there is no live database (no safety backup to take). */
  noLiveDatabase?: () => void,
): Promise<LiveState> {
  const livePath = ctx.config.databasePath;
  const exists = await fs.access(livePath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    noLiveDatabase?.();
    return { unreadable: false };
  }
  // A backup with another page size than a WAL live database is copied in rollback mode, which
  // needs the application's connections closed; the copy's thread says so before it writes.
  const info = await describeDatabase(livePath).catch(unlessDamaged);
  if (!info) return { unreadable: true };
  if (record.row.safety_backup_id) return { unreadable: false };
  // A run that died between taking the safety backup and recording it left it completed.
  const safetyJob = safetyJobId(req.jobId);
  const earlier = ctx.catalog.getBackupByJob(safetyJob);
  let safety: BackupRow;
  try {
    safety =
      earlier?.status === 'completed'
        ? earlier
        : await createBackup(ctx, { type: 'pre-migration', jobId: safetyJob, keepDamaged: true, lock: req.lock, signal: req.signal, gate });
  } catch (err) {
    // The database this restore replaces is damaged (the usual reason to restore): its snapshot is
    // no backup to list as good, but its pages are kept, as they were.
    if (err instanceof DamagedDatabase && err.keptAt) return { unreadable: false, damagedCopy: err.keptAt };
    // Pages too damaged to copy: the file itself is kept instead, as it is (once the source has passed).
    if (err instanceof AppError && err.code === 'database_unreadable') return { unreadable: true };
    throw err;
  }
  record.safetyTaken(safety.id);
  return { unreadable: false };
}

/** A live database that does not open as SQLite: the emergency case, where no safety backup can be taken. */
function unlessDamaged(err: unknown): undefined {
  const code = codeOf(err) ?? '';
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) return undefined;
  throw err;
}
