import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import { BACKUP_FILE_PATTERN } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { isInside } from '../runtime/files.js';
import type { Logger } from '../observability/logger.js';
import { manifestName } from '../catalog/manifest.js';
import { deferMirrorRemoval, removeFromMirror } from '../storage/mirror.js';

/** Safety backups kept when no configuration says otherwise (MAX_SAFETY_BACKUPS). */
export const DEFAULT_SAFETY_BACKUPS = 3;

/**
 * The backups of one group that retention must keep whatever their age: the newest whose last
 * full verification passed (with no failed check of any kind after it), and the newest not known
 * to be invalid, which covers the case where nothing was verified yet. `group` is newest first.
 */
function protectedIn(catalog: Catalog, group: BackupRow[]): Set<number> {
  const keep = new Set<number>();
  const lastOk = (b: BackupRow) => catalog.lastVerification(b.id)?.valid !== 0;
  const verifiedValid = group.find((b) => lastOk(b) && catalog.lastFullVerification(b.id)?.valid === 1);
  const notKnownInvalid = group.find(lastOk);
  if (verifiedValid) keep.add(verifiedValid.id);
  if (notKnownInvalid) keep.add(notKnownInvalid.id);
  return keep;
}

/**
 * Retention, in two groups that never count against each other:
 * - regular backups (`manual`, `scheduled`): the `maxBackups` newest are kept;
 * - safety backups (`pre-migration`, taken before every restore): the `MAX_SAFETY_BACKUPS` newest.
 * Older ones are deleted (file, manifest, the mirror's copy, then row), except, in each group, the
 * newest backup whose last full verification is valid, the newest not known to be invalid, and
 * any backup a running job has leased. Returns the ids deleted. Without `config`, the mirror is
 * left alone.
 */
export async function applyRetention(catalog: Catalog, maxBackups: number, log: Logger, config?: Config): Promise<number[]> {
  const completed = catalog.completedBackups();
  const regular = completed.filter((b) => b.backup_type !== 'pre-migration');
  const safety = completed.filter((b) => b.backup_type === 'pre-migration');
  const maxSafety = config?.maxSafetyBackups ?? DEFAULT_SAFETY_BACKUPS;
  if (regular.length <= maxBackups && safety.length <= maxSafety) return [];
  const kept = new Set([...catalog.leasedBackupIds(), ...protectedIn(catalog, regular), ...protectedIn(catalog, safety)]);
  const candidates = [...regular.slice(maxBackups), ...safety.slice(maxSafety)].filter((b) => !kept.has(b.id));
  const deleted: number[] = [];
  for (const backup of candidates) {
    // A second line behind reindex's checks: retention only ever deletes a file named like a backup.
    if (!BACKUP_FILE_PATTERN.test(path.basename(backup.file_path)) || (config && !isInside(config.backupDir, backup.file_path))) {
      log.error(
        { backupId: backup.id, file: backup.file_path },
        'retention refused to delete a file that is not a backup; keeping its row',
      );
      continue;
    }
    // The row goes first: a backup is never listed while its file is being removed, and a crash
    // in between leaves a file the catalog no longer lists (its manifest lets reindex bring it
    // back), never a listed backup without a file.
    catalog.deleteBackup(backup.id);
    try {
      await fs.rm(backup.file_path, { force: true });
      await fs.rm(path.join(path.dirname(backup.file_path), manifestName(path.basename(backup.file_path))), { force: true });
    } catch (err) {
      log.error(
        { err, backupId: backup.id, file: backup.file_path },
        'retention removed a backup from the catalog but could not delete its file',
      );
    }
    if (config) {
      // A mirror that is away must not make the primary keep growing: its copy is removed later.
      await removeFromMirror(config, backup).catch((err: unknown) => {
        deferMirrorRemoval(catalog, backup.file_path);
        log.warn({ err, backupId: backup.id }, 'retention could not delete the mirror copy of a backup; will retry');
      });
    }
    deleted.push(backup.id);
  }
  if (deleted.length) log.info({ deleted, maxBackups, maxSafety }, 'retention removed old backups');
  return deleted;
}
