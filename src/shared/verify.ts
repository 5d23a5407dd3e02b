import fs from 'node:fs/promises';
import type { BackupRow, Catalog } from './catalog.js';
import { sha256File } from './checksum.js';
import { decompressFile } from './compression.js';
import type { Config } from './config.js';
import { messageOf } from './errors.js';
import { isInside, removeQuietly, tempPath } from './files.js';
import { describeDatabase, integrityProblems } from './sqlite-ops.js';

export type VerifyMode = 'full' | 'quick';

export const CHECK_NAMES = ['file_exists', 'checksum', 'opens_as_sqlite', 'integrity'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  detail: string;
}

export interface Verification {
  valid: boolean;
  message: string;
  checks: CheckResult[];
}

/** An uncompressed SQLite file for a backup: the file itself, or a temp copy to remove after use. */
export interface ReadableCopy {
  path: string;
  release(): Promise<void>;
}

export async function readableCopy(config: Config, backup: BackupRow): Promise<ReadableCopy> {
  if (!backup.compression || backup.compression === 'none') return { path: backup.file_path, release: async () => undefined };
  const temp = tempPath(config.backupDir, `read-${backup.id}`);
  try {
    await decompressFile(backup.file_path, temp, backup.compression);
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
  return { path: temp, release: () => removeQuietly(temp) };
}

/**
 * The runbook's four checks, in order, stopping at the first that fails: the file exists inside
 * BACKUP_DIR, its SHA-256 is the catalog's, it opens read-only as SQLite, and `integrity_check`
 * (or `quick_check`) passes. With `keep`, a passing backup's readable copy is handed back for a
 * restore to use instead of being removed.
 */
export async function verifyBackup(
  config: Config,
  backup: BackupRow,
  mode: VerifyMode,
  keep = false,
): Promise<Verification & { copy?: ReadableCopy }> {
  const checks: CheckResult[] = [];
  const fail = (name: CheckName, detail: string, message: string): Verification => {
    checks.push({ name, ok: false, detail });
    return { valid: false, message, checks };
  };

  if (!isInside(config.backupDir, backup.file_path)) {
    return fail('file_exists', `${backup.file_path} is outside ${config.backupDir}`, 'file outside the backup directory');
  }
  const stat = await fs.stat(backup.file_path).catch(() => null);
  if (!stat?.isFile()) return fail('file_exists', `${backup.file_path} does not exist`, 'file missing');
  checks.push({ name: 'file_exists', ok: true, detail: `${stat.size} bytes` });

  const actual = await sha256File(backup.file_path);
  if (actual !== backup.checksum) {
    return fail('checksum', `expected ${backup.checksum}, found ${actual}`, 'checksum mismatch');
  }
  checks.push({ name: 'checksum', ok: true, detail: actual });

  let copy: ReadableCopy;
  try {
    copy = await readableCopy(config, backup);
  } catch (err) {
    return fail('opens_as_sqlite', `cannot decompress: ${messageOf(err)}`, 'not a readable backup (decompression failed)');
  }
  try {
    try {
      const info = await describeDatabase(copy.path);
      checks.push({ name: 'opens_as_sqlite', ok: true, detail: `page size ${info.pageSize}, user_version ${info.userVersion}` });
    } catch (err) {
      const notADatabase = (err as { code?: string }).code === 'SQLITE_NOTADB';
      return fail('opens_as_sqlite', messageOf(err), notADatabase ? 'not a SQLite database' : `cannot open the database: ${messageOf(err)}`);
    }
    let problems: string[];
    try {
      problems = await integrityProblems(copy.path, mode);
    } catch (err) {
      problems = [messageOf(err)];
    }
    const check = mode === 'full' ? 'integrity_check' : 'quick_check';
    if (problems.length) {
      return fail('integrity', problems.slice(0, 10).join('; '), `${check} failed: ${problems[0]}`);
    }
    checks.push({ name: 'integrity', ok: true, detail: `${check} ok` });
    const result = { valid: true, message: 'Backup is valid', checks };
    if (keep) {
      const kept = copy;
      copy = { path: kept.path, release: async () => undefined };
      return { ...result, copy: kept };
    }
    return result;
  } finally {
    await copy.release();
  }
}

/** Verifies and records the outcome as the backup's last verification. */
export async function verifyAndRecord(
  config: Config,
  catalog: Catalog,
  backup: BackupRow,
  mode: VerifyMode,
  keep = false,
): Promise<Verification & { copy?: ReadableCopy }> {
  const result = await verifyBackup(config, backup, mode, keep);
  catalog.recordVerification(backup.id, mode, result.valid, result.message, result.checks);
  return result;
}
