/**
 * Read-only looks at a database from inside the SQLite thread: its page size, version and journal
 * mode, and its integrity check.
 */
import Database from 'better-sqlite3';
import { threadCodeOf } from './thread-error.js';

/** @param {string} file @returns {import('./sqlite-ops.js').SqliteInfo} */
export function describe(file) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      pageSize: Number(db.pragma('page_size', { simple: true })),
      userVersion: Number(db.pragma('user_version', { simple: true })),
      journalMode: String(db.pragma('journal_mode', { simple: true })),
    };
  } finally {
    db.close();
  }
}

/** @param {string} file @param {'full' | 'quick'} mode @returns {string[]} */
export function integrity(file, mode, busyTimeout = 0) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    if (busyTimeout) db.pragma(`busy_timeout = ${busyTimeout}`);
    /** @type {string[]} */
    const found = [];
    try {
      for (const row of db.prepare(`PRAGMA ${mode === 'full' ? 'integrity_check' : 'quick_check'}`).iterate()) {
        // One problem a line; the "*** in database main ***" heading says nothing here.
        const text = String(Object.values(/** @type {Record<string, unknown>} */ (row))[0]);
        found.push(...text.split('\n').filter((line) => line && !/^\*\*\* in database \w+ \*\*\*$/.test(line)));
      }
    } catch (err) {
      // On some damage the check lists what it found and then stops with SQLITE_CORRUPT: the list
      // is the useful part, so it is kept, with the error after it.
      const code = threadCodeOf(err) ?? '';
      if (!found.length || !code.startsWith('SQLITE_CORRUPT')) throw err;
      found.push(/** @type {Error} */ (err).message);
    }
    return found;
  } finally {
    db.close();
  }
}
