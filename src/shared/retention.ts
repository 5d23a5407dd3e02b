import fs from 'node:fs/promises';
import type { Catalog } from './catalog.js';
import type { Logger } from './logger.js';

/**
 * Keeps the `maxBackups` newest completed backups and deletes the rest (file, then row). Never
 * deletes the newest backup not known to be invalid, nor one that a running job has leased.
 * Returns the ids deleted.
 */
export async function applyRetention(catalog: Catalog, maxBackups: number, log: Logger): Promise<number[]> {
  const completed = catalog.completedBackups();
  if (completed.length <= maxBackups) return [];
  const leased = catalog.leasedBackupIds();
  const newestValid = completed.find((b) => catalog.lastVerification(b.id)?.valid !== 0);
  const deleted: number[] = [];
  for (const backup of completed.slice(maxBackups)) {
    if (backup.id === newestValid?.id || leased.has(backup.id)) continue;
    try {
      await fs.rm(backup.file_path, { force: true });
    } catch (err) {
      log.warn({ err, backupId: backup.id }, 'retention could not delete a backup file; keeping its row');
      continue;
    }
    catalog.deleteBackup(backup.id);
    deleted.push(backup.id);
  }
  if (deleted.length) log.info({ deleted, maxBackups }, 'retention removed old backups');
  return deleted;
}
