/**
 * What the SQLite threads send back for an error they met: its message and its code (SQLite's
 * `SQLITE_BUSY`, Node's `ENOENT`, a thread's own `LOCK_LOST`), which `SqliteOpError` keeps on the
 * other side. The threads are plain JavaScript and cannot import `domain/errors.ts`; this reads a
 * code as its `codeOf` does: a string on the error itself, or none.
 */

/** @param {unknown} err @returns {string | undefined} */
export function threadCodeOf(err) {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

/** @param {unknown} err @returns {{ message: string; code: string | undefined }} */
export function threadError(err) {
  return { message: err instanceof Error ? err.message : String(err), code: threadCodeOf(err) };
}
