/**
 * Verifying a backup: its primary copy, then the mirror's when that fails; the check a restore
 * gives a backup; and recording the outcome in the catalog.
 */
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import { isInside } from '../runtime/files.js';
import { checkCopy } from './check-copy.js';
import { mirrorSource, primarySource } from './readable-copy.js';
import type { CheckMode, CheckResult, Verification, VerifyResult } from './verify-types.js';

export * from './verify-types.js';
export { readableCopy, type ReadableCopy } from './readable-copy.js';

const summary = (v: Verification): Verification => ({ valid: v.valid, message: v.message, checks: v.checks });

/**
 * The runbook's four checks, in order, stopping at the first that fails: the file exists inside
 * BACKUP_DIR, its SHA-256 is the catalog's, it opens read-only as SQLite (after decryption, which
 * checks every chunk's tag, and decompression), and `integrity_check` (or `quick_check`) passes.
 * When the primary copy fails and a mirror is configured, the mirror's copy is checked the same
 * way and used if it passes. With `keep`, a passing backup's readable copy is handed back for a
 * restore to use instead of being removed.
 */
export async function verifyBackup(
  config: Config,
  backup: BackupRow,
  mode: CheckMode,
  keep = false,
  /** Names a kept copy: `restore` only under the database lock (the next holder may remove it), `read` otherwise. */
  purpose: 'read' | 'restore' = keep ? 'restore' : 'read',
): Promise<VerifyResult> {
  if (!isInside(config.backupDir, backup.file_path)) {
    const detail = `${backup.file_path} is outside ${config.backupDir}`;
    return { valid: false, message: 'file outside the backup directory', checks: [{ name: 'file_exists', ok: false, detail }] };
  }
  const primary = await checkCopy(config, backup, primarySource(config, backup), mode, keep, purpose);
  const mirror = mirrorSource(config, backup);
  if (primary.valid || !mirror) return { ...primary, source: 'primary' };
  const fromMirror = await checkCopy(config, backup, mirror, mode, keep, purpose);
  const copies = { primary: summary(primary), mirror: summary(fromMirror) };
  if (!fromMirror.valid) return { ...primary, source: 'primary', copies };
  return { ...fromMirror, message: `Backup is valid (mirror copy; primary copy: ${primary.message})`, source: 'mirror', copies };
}

/**
 * The check a restore gives a backup before copying it in: `checksum` (its SHA-256, and that it
 * opens) when these very bytes passed a full verification before, `full` otherwise.
 *
 * Why that is as strong as checking again: integrity_check is a function of the file's bytes, and
 * a full verification records the SHA-256 it found. When the catalog's checksum is that one, the
 * restore's own checksum check (it always runs, in this restore) proves the bytes are the ones
 * that passed, so a second integrity_check, or quick_check (a part of it), could only repeat the
 * same answer. Anything that changed the file since (damage, a rewrite, a catalog checksum altered
 * to match) gives another SHA-256, and then the full check runs. On 1 GiB this saves about 5 s of
 * a restore's checks, all but the hash.
 */
export function restoreCheckMode(catalog: Catalog, backup: BackupRow): Extract<CheckMode, 'full' | 'checksum'> {
  const last = catalog.lastFullVerification(backup.id);
  if (!last?.valid || !backup.checksum) return 'full';
  let checks: unknown;
  try {
    checks = JSON.parse(last.checks);
  } catch {
    return 'full';
  }
  const passed =
    Array.isArray(checks) && (checks as CheckResult[]).some((c) => c?.name === 'checksum' && c.ok && c.detail === backup.checksum);
  return passed ? 'checksum' : 'full';
}

/** Verifies and records the outcome as the backup's last verification. */
export async function verifyAndRecord(
  config: Config,
  catalog: Catalog,
  backup: BackupRow,
  mode: CheckMode,
  keep = false,
  purpose: 'read' | 'restore' = keep ? 'restore' : 'read',
): Promise<VerifyResult> {
  const result = await verifyBackup(config, backup, mode, keep, purpose);
  catalog.recordVerification(backup.id, mode === 'full' ? 'full' : 'quick', result.valid, result.message, result.checks);
  return result;
}
