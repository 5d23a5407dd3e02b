import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { BACKUP_FILE_PATTERN } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../runtime/logger.js';
import { manifestName } from '../catalog/manifest.js';
import { deferMirrorRemoval, removeFromMirror } from '../storage/mirror.js';
import { storesOf } from '../storage/registry.js';
import { LocalDirStorage } from '../storage/local-dir.js';
import { nameOf } from '../storage/storage.js';

/** Safety backups kept when no configuration says otherwise (MAX_SAFETY_BACKUPS). */
export const DEFAULT_SAFETY_BACKUPS = 3;

/**
 * Retention, in two groups that never count against each other:
 * - regular backups (`manual`, `scheduled`): the `maxBackups` newest are kept;
 * - safety backups (`pre-migration`, taken before every restore): the `MAX_SAFETY_BACKUPS` newest.
 * Older ones are deleted (row, file, manifest, then the mirror's copy), except, in each group, the
 * newest backup whose last full verification is valid, the newest not known to be invalid, and
 * any backup a running job has leased, and the snapshots of the WAL archive's generations. Returns the ids deleted. Without `config`, the mirror is
 * left alone.
 */
export async function applyRetention(catalog: Catalog, maxBackups: number, log: Logger, config?: Config): Promise<number[]> {
  const maxSafety = config?.maxSafetyBackups ?? DEFAULT_SAFETY_BACKUPS;
  const regular = catalog.retentionView('regular', maxBackups);
  const safety = catalog.retentionView('safety', maxSafety);
  if (!regular.beyond.length && !safety.beyond.length) return [];
  // A WAL generation's snapshot stays while the generation is kept (WAL_RETENTION): its segments replay onto it.
  const kept = new Set([...catalog.leasedBackupIds(), ...regular.protectedIds, ...safety.protectedIds, ...catalog.wal.snapshotIds()]);
  const candidates = [...regular.beyond, ...safety.beyond].filter((b) => !kept.has(b.id));
  const deleted: number[] = [];
  for (const backup of candidates) {
    // A second line behind reindex's checks: retention only ever deletes a file named like a backup.
    if (
      !BACKUP_FILE_PATTERN.test(path.basename(backup.file_path)) ||
      (config && path.dirname(path.resolve(backup.file_path)) !== config.backupDir)
    ) {
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
    const name = nameOf(backup);
    // The row's directory: BACKUP_DIR, or (without `config`) wherever the catalog says.
    const primary = config ? storesOf(config).primary : new LocalDirStorage('primary', path.dirname(backup.file_path));
    try {
      await primary.remove(name);
      await primary.remove(manifestName(name));
    } catch (err) {
      log.error(
        { err, backupId: backup.id, file: backup.file_path },
        'retention removed a backup from the catalog but could not delete its file',
      );
    }
    if (config) {
      // A mirror that is away must not make the primary keep growing: its copy is removed later.
      await removeFromMirror(config, name).catch((err: unknown) => {
        deferMirrorRemoval(catalog, name);
        log.warn({ reason: messageOf(err), backupId: backup.id }, 'retention could not delete the mirror copy of a backup; will retry');
      });
    }
    deleted.push(backup.id);
  }
  if (deleted.length) log.info({ deleted, maxBackups, maxSafety }, 'retention removed old backups');
  return deleted;
}
