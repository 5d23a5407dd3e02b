import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupRow, BackupType, Catalog } from './catalog.js';
import { sha256File } from './checksum.js';
import { encodeFile, extensionOf } from './codec.js';
import type { Config } from './config.js';
import { keyringOf } from './encryption.js';
import { AppError, messageOf, permanentFailure } from './errors.js';
import { backupBaseName, ensurePrivateDir, publish, removeQuietly, tempPath } from './files.js';
import type { LockGuard } from './lock.js';
import type { Logger } from './logger.js';
import { buildManifest, manifestName } from './manifest.js';
import { catchUpMirror, copyToMirror } from './mirror.js';
import { snapshot } from './sqlite-ops.js';
import { storesOf } from './storage.js';

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
  /** The database lock the caller holds: checked before the file is published and before the row completes. */
  lock?: LockGuard;
}

/** Turns the errors a backup meets into messages an operator can act on. */
function explain(err: unknown, config: Config): Error {
  if (err instanceof AppError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const message = messageOf(err);
  if (code === 'ENOSPC' || /SQLITE_FULL|database or disk is full/i.test(message)) {
    return Object.assign(new Error(`no space left in ${config.backupDir}`), { code: 'ENOSPC' });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return permanentFailure('backup_dir_not_writable', `backup directory ${config.backupDir} is not writable (${code})`);
  }
  if (code === 'SQLITE_CANTOPEN' && /unable to open|cannot open/i.test(message)) {
    return permanentFailure('backup_dir_not_writable', `cannot write into ${config.backupDir}: ${message}`);
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return permanentFailure('database_unreadable', `database ${config.databasePath} is not a readable SQLite database: ${message}`);
  }
  return err instanceof Error ? err : new Error(message);
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
  const id = catalog.beginBackup(req.type, path.join(config.backupDir, base + ext), req.jobId, config.compression, key?.id ?? null);
  const rawTemp = tempPath(config.backupDir, `backup-${id}`);
  const packedTemp = `${rawTemp}${ext}`;
  let finalPath: string | undefined;
  const progress = async (p: number) => {
    await req.onProgress?.(p);
  };

  try {
    await fs.access(config.databasePath).catch(() => {
      throw permanentFailure('database_missing', `database file ${config.databasePath} does not exist`);
    });
    await ensurePrivateDir(config.backupDir);
    await progress(5);

    // The destination is our own new file, so it is never busy; the bound is only a backstop.
    const info = await snapshot(config.databasePath, rawTemp, 60_000);
    if (info.journalMode !== 'wal') {
      log.warn(
        { journalMode: info.journalMode },
        'the database is not in WAL mode: writers were blocked while the backup copied it; switch it to WAL (PRAGMA journal_mode=WAL)',
      );
    }
    const databaseSize = (await fs.stat(rawTemp)).size;
    await progress(60);

    let finished = rawTemp;
    if (config.compression !== 'none' || key) {
      await encodeFile(rawTemp, packedTemp, config.compression, key, (n) => req.onBytes?.(n, databaseSize));
      await removeQuietly(rawTemp);
      finished = packedTemp;
    }
    await progress(75);

    const [checksum, stat] = await Promise.all([sha256File(finished), fs.stat(finished)]);
    await req.lock?.assertHeld();
    finalPath = await publish(finished, config.backupDir, base, ext);
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
    await storesOf(config).primary.putText(manifestName(path.basename(finalPath)), `${JSON.stringify(manifest, null, 2)}\n`);
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
    log.info({ backupId: id, file: finalPath, bytes: stat.size, ms: Date.now() - startedAt.getTime() }, 'backup completed');
    try {
      await progress(90);
      // A mirror that was away gets the backups it missed once it takes copies again.
      if (await copyToMirror(ctx, row)) await catchUpMirror(ctx);
      await progress(100);
    } catch (err) {
      // The backup is complete and recorded: a later step failing (its job lost when Redis
      // restarted empty, a mirror) must not mark it failed and strand its file.
      log.warn({ backupId: id, err: (err as Error).message }, 'backup completed; a step after it failed');
    }
    return row;
  } catch (err) {
    if (finalPath && catalog.getBackup(id)?.status !== 'completed') {
      await removeQuietly(finalPath, path.join(config.backupDir, manifestName(path.basename(finalPath))));
    }
    await removeQuietly(rawTemp, packedTemp);
    const reason = explain(err, config);
    catalog.failBackup(id, reason.message);
    log.error({ backupId: id, err: reason }, 'backup failed');
    throw reason;
  }
}
