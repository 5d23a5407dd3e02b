/**
 * Errors with a stable `code` and the HTTP status they map to. `permanent` errors are not worth
 * retrying (bad input, a missing or damaged file); the worker turns them into BullMQ's
 * UnrecoverableError. Anything else is treated as transient and retried with backoff.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 500,
    readonly permanent = false,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, code = 'bad_request') => new AppError(code, message, 400, true);
export const notFound = (message: string, code = 'not_found') => new AppError(code, message, 404, true);
export const conflict = (message: string, code = 'conflict') => new AppError(code, message, 409, true);
export const unavailable = (message: string, code = 'unavailable') => new AppError(code, message, 503, false);

/** Starts the failure reason of a backup that found the live database damaged; `/health` looks for it. */
export const DAMAGED_REASON_PREFIX = 'the live database is damaged';

/** A failure of a job that retrying cannot fix. */
export const permanentFailure = (code: string, message: string) => new AppError(code, message, 422, true);

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
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || !PERMANENT_CODES.has(code);
}
