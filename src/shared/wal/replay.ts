import { writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { AppError, messageOf, permanentFailure } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import path from 'node:path';
import { isTempName, removeQuietly, tempPath } from '../runtime/files.js';
import { integrityProblems } from '../sqlite/sqlite-ops.js';
import { isPlain } from '../codec/codec.js';
import { encodingOf, primarySource } from '../verify/readable-copy.js';
import { verifyBackup, type ReadableCopy } from '../verify/verify.js';
import { SegmentReader } from './pack-reader.js';
import { framesOf } from './wal-format.js';

/** What a replay produced: a checked database file, and what it is made of. */
export interface Replayed {
  copy: ReadableCopy;
  generation: WalGenerationRow;
  snapshotBackupId: number;
  segmentsApplied: number;
  /** When the last applied segment was read from the WAL: the database is as of then. */
  restoredTo: string;
}

/** The newest generation that has a snapshot and can be replayed. */
export function latestReplayable(catalog: Catalog): WalGenerationRow | undefined {
  return catalog.wal
    .generations()
    .filter((g) => g.snapshot_backup_id !== null && catalog.getBackup(g.snapshot_backup_id)?.status === 'completed')
    .at(-1);
}

/**
 * Rebuilds the database as of the last of `segments` (the generation's, in order: every one of them
 * without it; a restore's plan picks them, `restore-plan.ts`): the snapshot backup's checksum and
 * that it opens give a readable copy; each segment
 * is read (primary, else mirror), its SHA-256 and WAL checksum chain checked, and its frames'
 * pages written at their places in order; the file is cut to the size of the last commit and
 * must pass `integrity_check`. The snapshot was taken after the generation's first frame, so
 * replaying from there leaves every page as of the last commit applied (a frame holds a whole
 * page; one the snapshot already has is written over by the same or a later version).
 * `purpose` `restore` names the temp file so the next holder of the database lock may remove it.
 */
export async function replayGeneration(
  config: Config,
  catalog: Catalog,
  generation: WalGenerationRow,
  segments: WalSegmentRow[] = catalog.wal.segments(generation.id),
  /**
   * `restore` (the default) only for a caller holding the database lock: the next holder may remove
   * such temp files. A replay without the lock (a drill, `--output`) names its copies `read`, so
   * a backup running beside it in the same process leaves them alone.
   */
  purpose: 'read' | 'restore' = 'restore',
  /** Told where the rebuilt database is once its bytes are final, before its integrity_check. */
  bytesFinal?: (path: string) => void,
): Promise<Replayed> {
  if (generation.snapshot_backup_id === null) {
    throw permanentFailure('backup_not_restorable', `WAL generation ${generation.id} has no snapshot yet`);
  }
  const snapshot = catalog.getBackup(generation.snapshot_backup_id);
  if (!snapshot || snapshot.status !== 'completed') {
    throw permanentFailure(
      'backup_not_restorable',
      `the snapshot of WAL generation ${generation.id} (backup ${generation.snapshot_backup_id}) is gone`,
    );
  }
  // The snapshot's SHA-256 is checked, and that it opens, not its integrity: the database rebuilt
  // from it gets integrity_check in full below, which covers every page the snapshot still gives
  // it (the others are written over by the segments), so checking the snapshot in full first only
  // doubled the restore's longest step. Only a failure is recorded as the backup's verification: a
  // pass of its checksum alone says nothing new of a backup.
  const beside = copyBeside(config, snapshot, purpose);
  const verification = await verifyBackup(config, snapshot, 'checksum', true, purpose);
  if (!verification.valid) catalog.recordVerification(snapshot.id, 'quick', false, verification.message, verification.checks);
  const copied = await beside;
  if (!verification.valid || !verification.copy) {
    await copied?.release();
    throw permanentFailure(
      'backup_invalid',
      `the snapshot of WAL generation ${generation.id} (backup ${snapshot.id}) failed verification: ${verification.message}`,
    );
  }
  const written = await writableCopy(config, verification.copy, snapshot.id, purpose, copied);
  // Once in WAL mode, the read-only connections that check it leave -wal and -shm beside it: they go with it.
  const copy: ReadableCopy = {
    path: written.path,
    release: async () => {
      await written.release();
      await removeQuietly(`${written.path}-wal`, `${written.path}-shm`);
    },
  };
  try {
    const applied = await applySegments(config, catalog, copy.path, segments);
    // The application's database was in WAL mode (archiving needs it); a backup file's header says
    // rollback journal, and only a replayed frame of page 1 would have said otherwise. Restored
    // over a database that is gone, the file must come back as the application had it.
    walMode(copy.path);
    bytesFinal?.(copy.path);
    const problems = await integrityProblems(copy.path, 'full');
    if (problems.length) {
      throw permanentFailure(
        'backup_invalid',
        `the database rebuilt from WAL generation ${generation.id} fails integrity_check: ${problems.slice(0, 3).join('; ')}`,
      );
    }
    return {
      copy,
      generation,
      snapshotBackupId: snapshot.id,
      segmentsApplied: applied,
      restoredTo: segments.at(-1)?.read_at ?? generation.snapshot_at ?? snapshot.completed_at ?? snapshot.started_at,
    };
  } catch (err) {
    await copy.release();
    if (err instanceof AppError) throw err;
    throw permanentFailure('backup_invalid', `replaying WAL generation ${generation.id} failed: ${messageOf(err)}`, err);
  }
}

/** Writes the segments' pages into `file` in order and cuts it to the last commit's size. Returns how many were applied. */
export async function applySegments(config: Config, catalog: Catalog, file: string, segments: WalSegmentRow[]): Promise<number> {
  if (!segments.length) return 0;
  const handle = await fs.open(file, 'r+');
  const reader = new SegmentReader(config, catalog);
  try {
    let dbSizePages = 0;
    let pageSize = 0;
    let lastGood: string | undefined;
    for (const segment of segments) {
      const read = await reader.read(segment);
      if (!read.ok) {
        // Never a silent shorter restore: say how far the archive does reach, for a restore to that moment.
        const reach = lastGood ? `; the archive reaches ${lastGood} before it (restore to that moment instead)` : '';
        throw permanentFailure('backup_invalid', `the WAL archive is broken: ${read.problem}${reach}`);
      }
      lastGood = segment.read_at;
      pageSize = segment.page_size;
      // Written straight into the page cache, a thousand pages (4 MiB at 4 KiB) between yields to
      // the event loop, rather than one round trip through libuv's pool per page.
      let written = 0;
      for (const frame of framesOf(read.frames, pageSize)) {
        writeSync(handle.fd, frame.page, 0, frame.page.length, (frame.pageNumber - 1) * pageSize);
        if (frame.commitSize > 0) dbSizePages = frame.commitSize;
        if (++written % 1024 === 0) await yieldToLoop();
      }
    }
    // Not flushed: the file is a scratch copy, made durable where it lands (the copy into the live
    // database commits through SQLite; a file written for `--output` is flushed as it is written).
    if (dbSizePages > 0) await handle.truncate(dbSizePages * pageSize);
    return segments.length;
  } finally {
    reader.close();
    await handle.close();
  }
}

/** A temp copy of a backup file, and the file it was copied from. */
type CopiedFrom = ReadableCopy & { from: string };

/**
 * A plain snapshot in BACKUP_DIR copied into a temp file for the replay to write into, while it is
 * verified: the two read the same bytes, and the copy is used only when they pass (`writableCopy`).
 * None for an encoded snapshot (its verification decodes it into a temp file of its own) or when
 * the copy fails (the replay then copies after the verification, as it would anyway).
 */
async function copyBeside(config: Config, snapshot: BackupRow, purpose: 'read' | 'restore'): Promise<CopiedFrom | undefined> {
  if (!isPlain(encodingOf(snapshot))) return undefined;
  const primary = primarySource(config, snapshot);
  const from = primary.store.localPath(primary.name);
  if (!from) return undefined;
  const temp = tempPath(config.backupDir, purpose, snapshot.id);
  try {
    await fs.copyFile(from, temp);
    await fs.chmod(temp, 0o600);
    return { path: temp, from, release: () => removeQuietly(temp) };
  } catch {
    await removeQuietly(temp);
    return undefined;
  }
}

/**
 * A copy the replay may write into: a decoded temp file as it is; a plain backup file (handed out
 * as itself) is copied first, so the backup is never touched, unless `copied` already holds it.
 */
async function writableCopy(
  config: Config,
  copy: ReadableCopy,
  backupId: number,
  purpose: 'read' | 'restore',
  copied?: CopiedFrom,
): Promise<ReadableCopy> {
  if (copied?.from === copy.path) {
    await copy.release();
    return copied;
  }
  await copied?.release();
  if (isTempName(path.basename(copy.path))) return copy;
  const temp = tempPath(config.backupDir, purpose, backupId);
  try {
    await fs.copyFile(copy.path, temp);
    await fs.chmod(temp, 0o600);
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  } finally {
    await copy.release();
  }
  return { path: temp, release: () => removeQuietly(temp) };
}

/** Puts a file we own in WAL mode (a header change; the data is not rewritten) and leaves no -wal beside it. */
function walMode(file: string): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Removes a replayed copy that was not used. */
export const discard = (replayed: Replayed) => replayed.copy.release().catch(() => removeQuietly(replayed.copy.path));
