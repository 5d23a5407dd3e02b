/**
 * The copy through SQLite's backup API in one step, inside the SQLite thread: a snapshot's copy
 * when the live file cannot be frozen, and every restore's copy into the live database.
 */
import Database from 'better-sqlite3';

/** Pages per backup step: everything at once. A copy in small steps restarts on every write. */
const ALL_PAGES = 0x7fffffff;

const busy = () =>
  Object.assign(new Error('database stayed busy; the copy was abandoned before it started writing'), { code: 'SQLITE_BUSY' });

/**
 * Copies `source` over `destination` with SQLite's backup API in one step. Returns the source's
 * page count at the moment of the copy.
 * `beforeWrite` runs once the destination is locked for writing and before any page is written.
 * @param {string} source @param {string} destination @param {number} deadline @param {() => void} [beforeWrite]
 * @returns {Promise<number>}
 */
export async function copy(source, destination, deadline, beforeWrite) {
  const src = new Database(source, { readonly: true, fileMustExist: true });
  try {
    for (;;) {
      const result = await src.backup(destination, {
        progress: () => {
          // better-sqlite3 retries a busy destination forever; give up at the deadline instead.
          if (Date.now() > deadline) throw busy();
          beforeWrite?.();
          return ALL_PAGES;
        },
      });
      // When the very first step is refused as busy, SQLite reports 0 pages remaining (it has
      // not counted them yet) and better-sqlite3 resolves as if the copy were done. Every real
      // database has at least one page, so 0 in total means nothing was copied: try again.
      if (result.totalPages > 0) return result.totalPages;
      if (Date.now() > deadline) throw busy();
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    src.close();
  }
}
