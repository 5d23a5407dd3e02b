import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import { decodeStream, isPlain } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { KeyError, keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import { ensurePrivateDir, isInside, isTempName, removeQuietly, tempPath } from '../runtime/files.js';
import { LocalDirStorage } from '../storage/local-dir.js';
import { storesOf } from '../storage/registry.js';
import { nameOf, type BackupStorage } from '../storage/storage.js';
import { describeDatabase, integrityProblems } from '../sqlite/sqlite-ops.js';

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

/** Where one copy of a backup is read from. */
interface Source {
  store: BackupStorage;
  name: string;
}

function primarySource(config: Config, backup: BackupRow): Source {
  const dir = path.dirname(path.resolve(backup.file_path));
  // A row whose file sits deeper inside BACKUP_DIR (catalogs from before names) is read where it is.
  const store = dir === config.backupDir ? storesOf(config).primary : new LocalDirStorage('primary', dir);
  return { store, name: nameOf(backup) };
}

function mirrorSource(config: Config, backup: BackupRow): Source | undefined {
  const { mirror } = storesOf(config);
  return mirror ? { store: mirror, name: nameOf(backup) } : undefined;
}

/**
 * Downloads a copy from a target that is not a filesystem (a bucket) into a temp file in
 * BACKUP_DIR, once: the checks then read it like a local copy.
 */
async function download(config: Config, backup: BackupRow, source: Source, purpose: 'read' | 'restore'): Promise<string> {
  await ensurePrivateDir(config.backupDir);
  const temp = tempPath(config.backupDir, purpose, backup.id);
  try {
    await pipeline(await source.store.read(source.name), createWriteStream(temp, { mode: 0o600 }));
    return temp;
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
}

const encodingOf = (backup: BackupRow) => ({ compression: backup.compression ?? 'none', encryption: backup.encryption ?? null });

/**
 * `purpose` names the temp file: a restore's copies are `restore-…`, which the next holder of the
 * database lock may remove if the restoring worker died; plain reads run beside each other unlocked.
 */
async function decodedCopy(config: Config, backup: BackupRow, source: Source, purpose: 'read' | 'restore' = 'read'): Promise<ReadableCopy> {
  const local = source.store.localPath(source.name);
  if (isPlain(encodingOf(backup)) && local) {
    // A download is a temp file of its own: the copy is it, and releasing it removes it.
    const isTemp = isTempName(path.basename(local));
    return { path: local, release: async () => (isTemp ? removeQuietly(local) : undefined) };
  }
  await ensurePrivateDir(config.backupDir);
  const temp = tempPath(config.backupDir, purpose, backup.id);
  try {
    await decodeStream(await source.store.read(source.name), temp, encodingOf(backup), keyringOf(config));
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
  return { path: temp, release: () => removeQuietly(temp) };
}

/**
 * A readable SQLite copy of a backup: from BACKUP_DIR, or from the mirror when the primary file
 * is missing. Decrypted and decompressed into a temp file when needed.
 */
export async function readableCopy(config: Config, backup: BackupRow, purpose: 'read' | 'restore' = 'read'): Promise<ReadableCopy> {
  const primary = primarySource(config, backup);
  const mirror = mirrorSource(config, backup);
  const source = !(await primary.store.stat(primary.name)) && mirror && (await mirror.store.stat(mirror.name)) ? mirror : primary;
  if (source.store.localPath(source.name)) return decodedCopy(config, backup, source, purpose);
  const raw = await download(config, backup, source, purpose);
  try {
    const copy = await decodedCopy(config, backup, localSource(raw), purpose);
    if (copy.path === raw) return copy;
    await removeQuietly(raw);
    return copy;
  } catch (err) {
    await removeQuietly(raw);
    throw err;
  }
}

export type VerifyResult = Verification & {
  copy?: ReadableCopy;
  /** Which copy passed (or, when none did, the primary's). */
  source?: 'primary' | 'mirror';
  /** When the mirror was tried too: what each copy's checks found. */
  copies?: { primary: Verification; mirror: Verification };
};

type SqliteOutcome = { ok: true; detail: string } | { ok: false; name: CheckName; detail: string; message: string };

/** Checks 3 and 4 on a readable SQLite file; never rejects. */
async function sqliteChecks(file: string, mode: VerifyMode): Promise<{ opens: SqliteOutcome; integrity?: SqliteOutcome }> {
  let opens: SqliteOutcome;
  try {
    const info = await describeDatabase(file);
    opens = { ok: true, detail: `page size ${info.pageSize}, user_version ${info.userVersion}` };
  } catch (err) {
    const notADatabase = (err as { code?: string }).code === 'SQLITE_NOTADB';
    const message = notADatabase ? 'not a SQLite database' : `cannot open the database: ${messageOf(err)}`;
    return { opens: { ok: false, name: 'opens_as_sqlite', detail: messageOf(err), message } };
  }
  let problems: string[];
  try {
    problems = await integrityProblems(file, mode);
  } catch (err) {
    problems = [messageOf(err)];
  }
  const check = mode === 'full' ? 'integrity_check' : 'quick_check';
  const integrity: SqliteOutcome = problems.length
    ? { ok: false, name: 'integrity', detail: problems.slice(0, 10).join('; '), message: `${check} failed: ${problems[0]}` }
    : { ok: true, detail: `${check} ok` };
  return { opens, integrity };
}

/** A temp file in BACKUP_DIR as a source. */
const localSource = (file: string): Source => ({ store: new LocalDirStorage('primary', path.dirname(file)), name: path.basename(file) });

async function checkCopy(
  config: Config,
  backup: BackupRow,
  source: Source,
  mode: VerifyMode,
  keep: boolean,
  purpose: 'read' | 'restore' = keep ? 'restore' : 'read',
): Promise<VerifyResult> {
  const checks: CheckResult[] = [];
  const fail = (name: CheckName, detail: string, message: string): Verification => {
    checks.push({ name, ok: false, detail });
    return { valid: false, message, checks };
  };
  const local = source.store.localPath(source.name);
  const where = local ?? `${source.store.location}/${source.name}`;

  let stat: { size: number } | null;
  try {
    stat = await source.store.stat(source.name);
  } catch (err) {
    return fail('file_exists', `${where}: ${messageOf(err)}`, `cannot reach the copy: ${messageOf(err)}`);
  }
  if (!stat) return fail('file_exists', `${where} does not exist`, 'file missing');
  checks.push({ name: 'file_exists', ok: true, detail: `${stat.size} bytes` });

  if (!local) {
    // A copy in a bucket is downloaded once, then checked like a local one; the download goes
    // unless it is itself the readable copy handed to a restore.
    let raw: string;
    try {
      raw = await download(config, backup, source, purpose);
    } catch (err) {
      return fail('checksum', `cannot read ${where}: ${messageOf(err)}`, `cannot read the copy: ${messageOf(err)}`);
    }
    const result = await checkCopy(config, backup, localSource(raw), mode, keep, purpose).catch(async (err: unknown) => {
      await removeQuietly(raw);
      throw err;
    });
    if (result.copy?.path !== raw) await removeQuietly(raw);
    return { ...result, checks: [...checks, ...result.checks.slice(1)] };
  }

  // A plain local backup is its own SQLite file: its SQLite checks (in their own thread) read
  // it while the hash does, so a full verification costs the longer of the two, not their sum.
  // The outcome is still reported in the runbook's order: a checksum mismatch comes first.
  const plainFile = isPlain(encodingOf(backup)) ? local : undefined;
  const early = plainFile ? sqliteChecks(plainFile, mode) : undefined;

  const actual = await source.store.sha256(source.name);
  if (actual !== backup.checksum) {
    await early; // the file is being read; let that finish before anyone changes it
    return fail('checksum', `expected ${backup.checksum}, found ${actual}`, 'checksum mismatch');
  }
  checks.push({ name: 'checksum', ok: true, detail: actual });

  let copy: ReadableCopy;
  try {
    copy = await decodedCopy(config, backup, source, purpose);
  } catch (err) {
    if (err instanceof KeyError)
      return fail('opens_as_sqlite', `cannot decrypt: ${err.message}`, `not a readable backup (cannot decrypt: ${err.message})`);
    return fail('opens_as_sqlite', `cannot decompress: ${messageOf(err)}`, 'not a readable backup (decompression failed)');
  }
  try {
    const { opens, integrity } = await (early ?? sqliteChecks(copy.path, mode));
    for (const [name, outcome] of [
      ['opens_as_sqlite', opens],
      ['integrity', integrity],
    ] as const) {
      if (!outcome) break;
      if (!outcome.ok) return fail(outcome.name, outcome.detail, outcome.message);
      checks.push({ name, ok: true, detail: outcome.detail });
    }
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
  mode: VerifyMode,
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
 * The check a restore gives a backup before copying it in: `quick` (checksum and quick_check)
 * when these very bytes passed a full verification before, `full` otherwise.
 *
 * Why that is as strong as checking again: integrity_check is a function of the file's bytes, and
 * a full verification records the SHA-256 it found. When the catalog's checksum is that one, the
 * restore's own checksum check (it always runs, in this restore) proves the bytes are the ones
 * that passed, so a second integrity_check could only repeat the same answer. Anything that
 * changed the file since (damage, a rewrite, a catalog checksum altered to match) gives another
 * SHA-256, and then the full check runs. On 1 GiB this saves about 4 s of a restore, most of it.
 */
export function restoreCheckMode(catalog: Catalog, backup: BackupRow): VerifyMode {
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
  return passed ? 'quick' : 'full';
}

/** Verifies and records the outcome as the backup's last verification. */
export async function verifyAndRecord(
  config: Config,
  catalog: Catalog,
  backup: BackupRow,
  mode: VerifyMode,
  keep = false,
  purpose: 'read' | 'restore' = keep ? 'restore' : 'read',
): Promise<VerifyResult> {
  const result = await verifyBackup(config, backup, mode, keep, purpose);
  catalog.recordVerification(backup.id, mode, result.valid, result.message, result.checks);
  return result;
}
