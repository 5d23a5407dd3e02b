import fs from 'node:fs/promises';
import path from 'node:path';
import type { Catalog } from './catalog.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { manifestName } from './manifest.js';
import { deferMirrorRemoval, removeFromMirror } from './mirror.js';

/**
 * Keeps the `maxBackups` newest completed backups and deletes the rest (file, manifest, the
 * mirror's copy, then row). Never deletes the newest backup not known to be invalid, nor one that
 * a running job has leased. Returns the ids deleted. Without `config`, the mirror is left alone.
 */
export async function applyRetention(catalog: Catalog, maxBackups: number, log: Logger, config?: Config): Promise<number[]> {
  const completed = catalog.completedBackups();
  if (completed.length <= maxBackups) return [];
  const leased = catalog.leasedBackupIds();
  const newestValid = completed.find((b) => catalog.lastVerification(b.id)?.valid !== 0);
  const deleted: number[] = [];
  for (const backup of completed.slice(maxBackups)) {
    if (backup.id === newestValid?.id || leased.has(backup.id)) continue;
    try {
      await fs.rm(backup.file_path, { force: true });
      await fs.rm(path.join(path.dirname(backup.file_path), manifestName(path.basename(backup.file_path))), { force: true });
    } catch (err) {
      log.warn({ err, backupId: backup.id }, 'retention could not delete a backup file; keeping its row');
      continue;
    }
    if (config) {
      // A mirror that is away must not make the primary keep growing: its copy is removed later.
      await removeFromMirror(config, backup).catch((err: unknown) => {
        deferMirrorRemoval(catalog, backup.file_path);
        log.warn({ err, backupId: backup.id }, 'retention could not delete the mirror copy of a backup; will retry');
      });
    }
    catalog.deleteBackup(backup.id);
    deleted.push(backup.id);
  }
  if (deleted.length) log.info({ deleted, maxBackups }, 'retention removed old backups');
  return deleted;
}
