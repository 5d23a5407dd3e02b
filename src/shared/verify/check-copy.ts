/**
 * The runbook's four checks on one copy of a backup (the primary's or the mirror's): it exists, its
 * SHA-256 is the catalog's, it opens as SQLite, and its integrity check passes.
 */
import type { BackupRow } from '../catalog/catalog.js';
import { isPlain } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { KeyError, codeOf, messageOf } from '../domain/errors.js';
import { removeQuietly } from '../runtime/files.js';
import { describeDatabase, integrityProblems } from '../sqlite/sqlite-ops.js';
import { decodedCopy, download, encodingOf, localSource, type ReadableCopy, type Source } from './readable-copy.js';
import type { CheckName, CheckResult, Verification, CheckMode, VerifyResult } from './verify-types.js';

type SqliteOutcome = { ok: true; detail: string } | { ok: false; name: CheckName; detail: string; message: string };

/** Checks 3 and 4 on a readable SQLite file; never rejects. */
async function sqliteChecks(file: string, mode: CheckMode): Promise<{ opens: SqliteOutcome; integrity?: SqliteOutcome }> {
  let opens: SqliteOutcome;
  try {
    const info = await describeDatabase(file);
    opens = { ok: true, detail: `page size ${info.pageSize}, user_version ${info.userVersion}` };
  } catch (err) {
    const notADatabase = codeOf(err) === 'SQLITE_NOTADB';
    const message = notADatabase ? 'not a SQLite database' : `cannot open the database: ${messageOf(err)}`;
    return { opens: { ok: false, name: 'opens_as_sqlite', detail: messageOf(err), message } };
  }
  if (mode === 'checksum') {
    return {
      opens,
      integrity: { ok: true, detail: 'integrity_check passed before for these very bytes (the same SHA-256): not run again' },
    };
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

export async function checkCopy(
  config: Config,
  backup: BackupRow,
  source: Source,
  mode: CheckMode,
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

  // A packed backup is hashed as it is decoded, in one read of the file instead of two; the
  // checksum is still reported first, and a file that does not decode is hashed on its own.
  let decoded: ReadableCopy | undefined;
  let undecodable: { err: unknown } | undefined;
  if (!plainFile) {
    try {
      decoded = await decodedCopy(config, backup, source, purpose);
    } catch (err) {
      undecodable = { err };
    }
  }
  const actual = decoded?.sha256 ?? (await source.store.sha256(source.name));
  if (actual !== backup.checksum) {
    await early; // the file is being read; let that finish before anyone changes it
    await decoded?.release();
    return fail('checksum', `expected ${backup.checksum}, found ${actual}`, 'checksum mismatch');
  }
  checks.push({ name: 'checksum', ok: true, detail: actual });

  let copy: ReadableCopy;
  try {
    if (undecodable) throw undecodable.err;
    copy = decoded ?? (await decodedCopy(config, backup, source, purpose));
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
