import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import type { BackupType } from '../domain/backup-types.js';
import { sha256File } from '../codec/checksum.js';
import { encodeFile, extensionOf } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { keyringOf } from '../codec/encryption.js';
import { AppError, DAMAGED_REASON_PREFIX, DamagedDatabase, codeOf, messageOf, permanentFailure } from '../domain/errors.js';
import { BACKUP_PREFIX, backupBaseName, ensurePrivateDir, removeQuietly, tempPath } from '../runtime/files.js';
import type { LockGuard } from '../locking/lock.js';
import type { Logger } from '../runtime/logger.js';
import { buildManifest, manifestName } from '../catalog/manifest.js';
import { catchUpMirror, copyToMirror } from '../storage/mirror.js';
import { integrityProblems, snapshot } from '../sqlite/sqlite-ops.js';
import { cancelledError, throwIfCancelled } from '../jobs/cancel.js';
import { storesOf } from '../storage/registry.js';

export interface BackupContext {
  config: Config;
  catalog: Catalog;
  log: Logger;
}

export interface BackupRequest {
  type: BackupType;
  /** The job that asked for it; a rerun of the same job reuses its catalog row. */
  jobId: string | null;
  onProgress?: (percent: number) => Promise<void> | void;
  /** Bytes compressed/encrypted so far out of the database's size, for a progress bar. */
  onBytes?: (done: number, total: number) => void;
  /**
   * When the live database turns out damaged, keep the snapshot of it (`DamagedDatabase.keptAt`)
   * instead of removing it: a restore replacing a damaged database keeps its pages this way.
   */
  keepDamaged?: boolean;
  /** The database lock the caller holds: checked before the file is published and before the row completes. */
  lock?: LockGuard;
  /**
   * Aborted when the job is cancelled: honoured until the file is published (the temp files go and
   * the row fails with `cancelled`); a published backup is completed.
   */
  signal?: AbortSignal;
  /**
   * Awaited right before the file is published: the copy, its check and its hash run meanwhile.
   * When it rejects, the backup was not wanted after all (a restore's safety backup, taken while
   * the backup to restore is verified, when that backup fails): its files go, its row is deleted
   * rather than failed, and createBackup rejects with the gate's error.
   */
  gate?: Promise<unknown>;
}

/** Re-exported for `restore/`, which imports it from here; everything else imports it from `domain/errors.ts`. */

/** quick_check's problems, or the reason it could not run. */
const quickCheck = (file: string): Promise<string[]> =>
  integrityProblems(file, 'quick').catch((err: unknown) => [`quick_check could not run: ${messageOf(err)}`]);

/**
 * A snapshot that fails quick_check never counts as a backup. When the live database fails it too,
 * the database itself is damaged: that is the operator's moment to act, and the backups taken
 * before the damage are what they will restore from. When only the copy fails, the copy went
 * wrong; the attempt is retried.
 */
async function refuseDamaged(ctx: BackupContext, req: BackupRequest, problems: string[], snapshotFile: string, base: string) {
  if (!problems.length) return;
  const { config, log } = ctx;
  const copyProblems = problems.slice(0, 3).join('; ');
  const live = await integrityProblems(config.databasePath, 'quick').catch((err: unknown) => {
    if (/^SQLITE_(CORRUPT|NOTADB)/.test(codeOf(err) ?? '')) return [messageOf(err)];
    // Busy or unreadable for a moment: no verdict on the database, so no alarm; try again later.
    throw new Error(`the snapshot failed quick_check (${copyProblems}) and the live database could not be checked: ${messageOf(err)}`, {
      cause: err,
    });
  });
  if (!live.length) throw new Error(`the snapshot failed quick_check although the live database passes it: ${copyProblems}`);
  let keptAt: string | undefined;
  if (req.keepDamaged) {
    keptAt = path.join(config.backupDir, `damaged-database-${base.slice(BACKUP_PREFIX.length)}.db`);
    await fs.rename(snapshotFile, keptAt);
  }
  const message =
    `${DAMAGED_REASON_PREFIX}: quick_check of ${config.databasePath} reports ${live.slice(0, 3).join('; ')}` +
    (live.length > 3 ? ` (and ${live.length - 3} more)` : '') +
    '. Nothing was recorded as a good backup and retention deleted nothing: restore the newest valid backup or repair the database now.';
  log.error({ problems: live.slice(0, 10), keptAt }, message);
  throw new DamagedDatabase(message, live, keptAt);
}

/** Turns the errors a backup meets into messages an operator can act on. */
function explain(err: unknown, config: Config): Error {
  if (err instanceof AppError) return err;
  const code = codeOf(err);
  const message = messageOf(err);
  if (code === 'ENOSPC' || /SQLITE_FULL|database or disk is full/i.test(message)) {
    return Object.assign(new Error(`no space left in ${config.backupDir}`, { cause: err }), { code: 'ENOSPC' });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return permanentFailure('backup_dir_not_writable', `backup directory ${config.backupDir} is not writable (${code})`, err);
  }
  if (code === 'SQLITE_CANTOPEN' && /unable to open|cannot open/i.test(message)) {
    return permanentFailure('backup_dir_not_writable', `cannot write into ${config.backupDir}: ${message}`, err);
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return permanentFailure(
      'database_unreadable',
      `${DAMAGED_REASON_PREFIX}: ${config.databasePath} is not a readable SQLite database (${message}); restore the newest valid backup now`,
      err,
    );
  }
  return err instanceof Error ? err : new Error(message, { cause: err });
}

/**
 * Takes one backup of the live database: a consistent snapshot into a temp file in BACKUP_DIR,
 * optional compression and encryption, fsync, a no-clobber rename to the runbook's file name,
 * SHA-256, its manifest beside it, and the catalog row moved from `in_progress` to `completed`;
 * then a copy to the mirror, when one is configured. On any failure before completion the temp
 * files are removed and the row is `failed` with the reason. A mirror that cannot take the copy
 * does not fail the backup: the copy is recorded as failed (see `/health`) and retried by the
 * next backup. The caller holds the database lock.
 */
export async function createBackup(ctx: BackupContext, req: BackupRequest): Promise<BackupRow> {
  const { config, catalog, log } = ctx;
  const startedAt = new Date();
  const key = keyringOf(config).write;
  const ext = extensionOf({ compression: config.compression, encrypted: Boolean(key) });
  const base = backupBaseName(startedAt);
  const { primary } = storesOf(config);
  const id = catalog.beginBackup(req.type, path.join(config.backupDir, base + ext), req.jobId, config.compression, key?.id ?? null);
  const rawTemp = tempPath(config.backupDir, 'backup', id);
  const packedTemp = `${rawTemp}${ext}`;
  let finalName: string | undefined;
  let abandoned = false;
  const progress = async (p: number) => {
    await req.onProgress?.(p);
  };

  try {
    await fs.access(config.databasePath).catch(() => {
      throw permanentFailure('database_missing', `database file ${config.databasePath} does not exist`);
    });
    await ensurePrivateDir(config.backupDir);
    throwIfCancelled(req.signal);
    await progress(5);

    // The destination is our own new file, so it is never busy; the bound is only a backstop.
    // A plain backup's checksum is taken by the copy's thread, reading the finished file back
    // from disk, while quick_check of that same file runs in a thread of its own on the other
    // core: the backup costs the copy plus the longer of the two, not the copy plus both.
    const plain = config.compression === 'none' && !key;
    let early: Promise<string[]> | undefined;
    let info: Awaited<ReturnType<typeof snapshot>>;
    try {
      info = await snapshot(config.databasePath, rawTemp, 60_000, req.signal, plain ? () => (early = quickCheck(rawTemp)) : undefined);
    } catch (err) {
      // The copy is being read by its check: let that finish before the temp file is removed.
      await early;
      if (codeOf(err) === 'SNAPSHOT_SHORT') throw new Error(`the snapshot is unusable: ${messageOf(err)}`, { cause: err });
      throw err;
    }
    if (info.journalMode !== 'wal') {
      log.warn(
        { journalMode: info.journalMode },
        'the database is not in WAL mode: writers were blocked while the backup copied it; switch it to WAL (PRAGMA journal_mode=WAL)',
      );
    }
    // Where the backup's time goes, for its log: the copy (with, for a plain backup, its hash and
    // flush), then packing and hashing beside quick_check, then publishing (where a restore's
    // safety backup first waits for the backup being restored to pass its verification).
    const copiedAt = Date.now();
    const databaseSize = (await fs.stat(rawTemp)).size;
    throwIfCancelled(req.signal);
    await progress(60);

    // The copy is checked before it can count as good: quick_check of the snapshot runs in its
    // SQLite thread on one core while this process packs and hashes on the other.
    const checked = early ?? quickCheck(rawTemp);
    let finished = rawTemp;
    let checksum: string;
    try {
      if (!plain) {
        // The packed file's checksum is taken from the bytes as they are written, not by reading it again.
        checksum = await encodeFile(rawTemp, packedTemp, config.compression, key, (n) => req.onBytes?.(n, databaseSize));
        finished = packedTemp;
      } else {
        checksum = info.sha256 ?? (await sha256File(finished));
      }
    } finally {
      // The snapshot is being read by the check: wait for it before anything is removed.
      await checked.catch(() => undefined);
    }
    await refuseDamaged(ctx, req, await checked, rawTemp, base);
    const checkedAt = Date.now();
    if (finished !== rawTemp) await removeQuietly(rawTemp);
    throwIfCancelled(req.signal);
    await progress(75);

    const stat = await fs.stat(finished);
    if (req.gate) {
      try {
        await req.gate;
      } catch (err) {
        abandoned = true;
        throw err;
      }
    }
    // The last safe point: past it the file has its final name, and the backup completes.
    throwIfCancelled(req.signal);
    await req.lock?.assertHeld();
    finalName = await primary.adopt(finished, base, ext);
    const finalPath = primary.localPath(finalName);
    const completedAt = new Date().toISOString();
    // The manifest is written before the row completes: a completed backup always has one.
    const manifest = buildManifest(
      {
        ...catalog.getBackup(id)!,
        file_path: finalPath,
        file_size_bytes: stat.size,
        checksum,
        completed_at: completedAt,
        status: 'completed',
      },
      { sourcePath: config.databasePath, pageSize: info.pageSize, userVersion: info.userVersion, sizeBytes: databaseSize },
      key,
    );
    await primary.putText(manifestName(finalName), `${JSON.stringify(manifest, null, 2)}\n`);
    await req.lock?.assertHeld();
    catalog.completeBackup(id, {
      filePath: finalPath,
      fileSize: stat.size,
      checksum,
      pageSize: info.pageSize,
      userVersion: info.userVersion,
      databaseSize,
      completedAt,
    });
    const row = catalog.getBackup(id)!;
    log.info(
      {
        backupId: id,
        file: finalPath,
        bytes: stat.size,
        ms: Date.now() - startedAt.getTime(),
        copy: info.method,
        copyMs: copiedAt - startedAt.getTime(),
        checkMs: checkedAt - copiedAt,
        publishMs: Date.now() - checkedAt,
      },
      'backup completed',
    );
    try {
      await progress(90);
      // A mirror that was away gets the backups it missed once it takes copies again.
      if (await copyToMirror(ctx, row)) await catchUpMirror(ctx);
      await progress(100);
    } catch (err) {
      // The backup is complete and recorded: a later step failing (its job lost when Redis
      // restarted empty, a mirror) must not mark it failed and strand its file.
      log.warn({ backupId: id, err }, 'backup completed; a step after it failed');
    }
    return row;
  } catch (err) {
    // Unless the row records this very file: a rerun that took the row over has its own file.
    const kept = catalog.getBackup(id);
    if (finalName && !(kept?.status === 'completed' && kept.file_path === primary.localPath(finalName))) {
      for (const name of [finalName, manifestName(finalName)]) await primary.remove(name).catch(() => undefined);
    }
    await removeQuietly(rawTemp, packedTemp);
    if (abandoned) {
      // Nothing was published: a backup its caller no longer wants leaves no row behind.
      catalog.deleteBackup(id);
      throw err;
    }
    // A cancel that stopped a SQLite thread rejects with the signal's bare reason.
    const reason = !finalName && req.signal?.aborted ? cancelledError(req.signal) : explain(err, config);
    catalog.failBackup(id, reason.message);
    log.error({ backupId: id, err: reason }, 'backup failed');
    throw reason;
  }
}
