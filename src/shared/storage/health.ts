import fs from 'node:fs/promises';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import { MIRROR } from './mirror.js';
import { storesOf } from './registry.js';
import type { BackupStorage } from './storage.js';
import { mirrorOutage } from './mirror.js';

export interface StorageHealth {
  primary: { writable: boolean; detail: string; sameDeviceAsDatabase: boolean | null };
  mirror:
    | { configured: false }
    | {
        configured: true;
        /** The directory or `s3://bucket/prefix`. */
        location: string;
        writable: boolean;
        detail: string;
        copies: number;
        missing: number;
        failed: { backupId: number; error: string | null; checkedAt: string }[];
        /** Since when copies have been failing, and the latest reason; null when the last copy succeeded. */
        outage: { since: string; reason: string } | null;
      };
}

async function device(file: string): Promise<number | null> {
  return fs.stat(file).then(
    (s) => s.dev,
    () => null,
  );
}

/**
 * The state of the places backups are kept: whether each can be written, whether the primary
 * shares a disk with the database (the runbook's "don't"), and how many backups the mirror lacks.
 * A probe's detail is the error as the system gave it (paths included): `/health` shows it only with the token.
 */
export async function storageHealth(
  config: Config,
  catalog?: Catalog,
  // `/health` passes a cached, time-bounded probe: it answers anyone, often, and must not hang.
  probe: (store: BackupStorage) => Promise<{ ok: boolean; detail: string }> = (store) => store.probe(),
): Promise<StorageHealth> {
  const { primary, mirror } = storesOf(config);
  const [primaryProbe, backupDev, databaseDev] = await Promise.all([probe(primary), device(config.backupDir), device(config.databasePath)]);
  const result: StorageHealth = {
    primary: {
      writable: primaryProbe.ok,
      detail: primaryProbe.detail,
      sameDeviceAsDatabase: backupDev === null || databaseDev === null ? null : backupDev === databaseDev,
    },
    mirror: { configured: false },
  };
  if (!mirror) return result;
  const mirrorProbe = await probe(mirror);
  const copies = catalog?.copies(MIRROR) ?? [];
  const missing = catalog?.backupsWithoutCopy(MIRROR).length ?? 0;
  const outage = catalog ? mirrorOutage(catalog) : undefined;
  result.mirror = {
    configured: true,
    location: mirror.location,
    writable: mirrorProbe.ok,
    detail: mirrorProbe.detail,
    copies: copies.filter((c) => c.status === 'ok').length,
    missing,
    failed: copies
      .filter((c) => c.status === 'failed')
      .slice(-5)
      .map((c) => ({ backupId: c.backup_id, error: c.error_message, checkedAt: c.checked_at })),
    outage: outage ? { since: outage.since, reason: outage.reason } : null,
  };
  return result;
}
