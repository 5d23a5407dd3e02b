/**
 * Every code an `AppError` can carry: the API's `error.code`, the CLI's `--json` error code, the
 * code on a failed job. One list, so that each caller (the producer's status table, the CLI's exit
 * codes, the worker's alerts) can be checked for a code it does not know.
 */
export const ERROR_CODES = [
  // A request the API cannot take as it is.
  'bad_request',
  'invalid_body',
  'invalid_query',
  'invalid_id',
  'invalid_json',
  'payload_too_large',
  'unsupported_media_type',
  'unauthorized',
  'cross_site_request',
  'read_only',
  // Something named that does not exist, or not in a state to act on.
  'not_found',
  'backup_not_found',
  'job_not_found',
  'job_finished',
  'backup_missing',
  'backup_not_restorable',
  'conflict',
  // The database lock.
  'lock_held',
  'lock_lost',
  'lock_unavailable',
  // Taking a backup.
  'database_missing',
  'database_damaged',
  'database_unreadable',
  'backup_dir_not_writable',
  // Verifying and restoring.
  'backup_invalid',
  'no_valid_backup',
  'no_backups',
  'no_wal_archive',
  'outside_recovery_window',
  'not_wal_mode',
  'page_size_mismatch',
  'restore_damaged',
  'restore_failed',
  'restore_rolled_back',
  'rollback_failed',
  // A cancel refused: the restore is copying into the live database, which it then finishes.
  'restore_copying',
  // Encryption keys and encrypted files.
  'key_file_unreadable',
  'key_file_invalid',
  'key_unavailable',
  'not_encrypted',
  'decryption_failed',
  // A job stopped at an operator's request.
  'cancelled',
  // What the service cannot do right now, or did not expect.
  'unavailable',
  'redis_unavailable',
  'internal_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Errors with a stable `code`. `permanent` errors are not worth retrying (bad input, a missing or
 * damaged file); the worker turns them into BullMQ's UnrecoverableError. Anything else is treated
 * as transient and retried with backoff. What a code means to a caller (an HTTP status, a CLI exit
 * code) is that caller's table, not the error's. An error it was made from goes in `cause`.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly permanent = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const badRequest = (message: string, code: ErrorCode = 'bad_request') => new AppError(code, message, true);
export const notFound = (message: string, code: ErrorCode = 'not_found') => new AppError(code, message, true);
export const conflict = (message: string, code: ErrorCode = 'conflict') => new AppError(code, message, true);
export const unavailable = (message: string, code: ErrorCode = 'unavailable') => new AppError(code, message, false);

/** Starts the failure reason of a backup that found the live database damaged; `/health` looks for it. */
export const DAMAGED_REASON_PREFIX = 'the live database is damaged';

/** A failure of a job that retrying cannot fix; `cause` is the error it was made from, if any. */
export const permanentFailure = (code: ErrorCode, message: string, cause?: unknown) =>
  new AppError(code, message, true, cause === undefined ? undefined : { cause });

/** Another backup or restore holds the database lock. */
export class LockHeldError extends AppError {
  constructor(readonly holder: string | null) {
    super('lock_held', `another backup or restore is running (${holder ?? 'unknown holder'}); try again when it has finished`, false);
  }
}

/** The database lock was lost (expired, taken over, or a newer grant's fence seen) while work ran under it. */
export class LockLostError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super('lock_lost', message, false, options);
  }
}

/** The live database failed quick_check: nothing was recorded as a good backup. */
export class DamagedDatabase extends AppError {
  constructor(
    message: string,
    readonly problems: string[],
    readonly keptAt: string | undefined,
  ) {
    super('database_damaged', message, true);
  }
}

/** A key file, a key or an encrypted file that cannot be used (`key_*`, `not_encrypted`, `decryption_failed`). */
export class KeyError extends AppError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, true, options);
  }
}

/** A configuration variable whose value cannot be used: the CLI's usage error (exit code 2), a service's refusal to start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The message of anything thrown, for logs, catalog rows and job failures. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Error codes of Node and SQLite that another attempt will meet again. */
const PERMANENT_CODES = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'EISDIR',
  'ENOTDIR',
  'EROFS',
  'EINVAL',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_PERM',
]);

/** Whether an error is worth another attempt (a busy database, a full disk, a lost connection). */
export function isTransient(err: unknown): boolean {
  if (err instanceof AppError) return !err.permanent;
  const code = codeOf(err);
  return code === undefined || !PERMANENT_CODES.has(code);
}

/** How many wrappers `codeOf` looks through before it gives up (a cycle of causes ends there too). */
const MAX_CAUSES = 8;

/**
 * The code an error carries: an AppError's `code`, a Node errno (`ENOENT`), SQLite's (`SQLITE_BUSY`,
 * kept by `SqliteOpError` from the thread), a library's own (`ELOCKED`). Only a string counts;
 * anything else, or nothing thrown with a code, is `undefined`.
 *
 * The error's own code by default: an error that wraps another (a `StorageError` around the SDK's,
 * an `Error` with `{ cause }`) has its own meaning, and the code of what it wraps must not decide,
 * say, whether it is retried. With `viaCause`, an error without a code of its own answers with its
 * cause's (and so on down): for errors that carry their code that way, as a network error an HTTP
 * client wraps (`TypeError: fetch failed`, the errno on its `cause`), which `explainS3Error` reads.
 */
export function codeOf(err: unknown, { viaCause = false }: { viaCause?: boolean } = {}): string | undefined {
  let at = err;
  for (let depth = 0; depth <= MAX_CAUSES && typeof at === 'object' && at !== null; depth++) {
    const code = 'code' in at ? at.code : undefined;
    if (typeof code === 'string') return code;
    if (!viaCause || (code !== undefined && code !== null) || !('cause' in at)) return undefined;
    at = at.cause;
  }
  return undefined;
}

/** A backup passed over by a restore of the newest valid one, and why. */
export interface SkippedBackup {
  backupId: number;
  reason: string;
}

/** Every candidate failed full verification, or there was none: nothing was changed. */
export class NoValidBackup extends AppError {
  constructor(
    readonly skipped: SkippedBackup[],
    message = `no backup passed verification (${skipped.length} tried)` +
      (skipped.length ? `: ${skipped.map((s) => s.reason).join('; ')}` : ''),
  ) {
    super(skipped.length ? 'no_valid_backup' : 'no_backups', message, true);
  }
}

/** There is no WAL generation with a snapshot: nothing to rebuild the latest point from. */
export class NoWalArchive extends AppError {
  constructor() {
    super('no_wal_archive', 'the WAL archive has no generation with a snapshot to restore from (is WAL_ARCHIVE_ENABLED on?)', true);
  }
}

/** The moment asked for is outside the recovery window (or in a gap of it); the message names the window. */
export class OutsideWindow extends AppError {
  constructor(message: string) {
    super('outside_recovery_window', message, true);
  }
}

/** The database is not in WAL mode: WAL archiving did nothing to it (the API answers 422). */
export class NotWalMode extends AppError {
  override name = 'NotWalMode';
  constructor(
    readonly databasePath: string,
    readonly journalMode: string,
  ) {
    super(
      'not_wal_mode',
      `WAL archiving needs the database in WAL mode; ${databasePath} is in ${journalMode} mode (run PRAGMA journal_mode=WAL in the application); nothing was done to it`,
      true,
    );
  }

  /** Itself: it is the API's 422 already (kept for the callers that asked for it before it was an AppError). */
  asAppError(): AppError {
    return this;
  }
}
