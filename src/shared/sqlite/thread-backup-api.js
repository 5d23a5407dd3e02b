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

/** Pages per step of a copy in steps: 16 MiB at 4 KiB pages, a few milliseconds of work. */
const STEP_PAGES = 4096;

/**
 * Copies `source` over `destination` with SQLite's backup API in steps, for a source nobody
 * writes to (a backup, a replayed copy): SQLite keeps the destination's write transaction open from
 * the first step to the last, so its readers see nothing of the copy until the last step commits
 * it, and a copy abandoned before then (a throw from `beforeEach` or `beforeLast`) is rolled back
 * with the destination as it was. `beforeEach` runs before every step once the destination is
 * locked, and between tries while it is busy; `beforeLast` before the step that commits. Returns
 * the source's page count.
 * @param {string} source @param {string} destination @param {number} deadline
 * @param {{ beforeEach: () => void; beforeLast: () => void }} hooks
 * @returns {Promise<number>}
 */
export async function copyInSteps(source, destination, deadline, { beforeEach, beforeLast }) {
  const src = new Database(source, { readonly: true, fileMustExist: true });
  try {
    for (;;) {
      const result = await src.backup(destination, {
        // Called after each step, the first of which (0 pages) only locks the destination.
        progress: ({ remainingPages }) => {
          beforeEach();
          if (remainingPages > STEP_PAGES) return STEP_PAGES;
          beforeLast();
          return ALL_PAGES;
        },
      });
      if (result.totalPages > 0) return result.totalPages;
      if (Date.now() > deadline) throw busy();
      beforeEach();
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    src.close();
  }
}
