import type { Catalog } from '../catalog/catalog.js';

/**
 * How long a reader's lease keeps retention off a backup file. Longer than any verify or restore
 * takes; a holder that dies without releasing it only delays that file's deletion by this much.
 */
export const BACKUP_LEASE_MS = 24 * 3_600_000;

/** Runs `fn` with a lease on the backup, released afterwards whatever happens. */
export async function withLease<T>(catalog: Catalog, backupId: number, holder: string, fn: () => Promise<T>): Promise<T> {
  catalog.lease(backupId, holder, BACKUP_LEASE_MS);
  try {
    return await fn();
  } finally {
    catalog.unlease(backupId, holder);
  }
}
