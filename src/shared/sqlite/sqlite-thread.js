/**
 * Runs inside a worker thread: every SQLite call that can take seconds on a large database (a
 * consistent copy, an integrity check, a restore), so the process's event loop keeps renewing
 * BullMQ and Redis locks and answering health checks meanwhile.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** Pages per backup step: everything at once. A copy in small steps restarts on every write. */
const ALL_PAGES = 0x7fffffff;

/** @param {string} file @returns {import('./sqlite-ops.js').SqliteInfo} */
function describe(file) {
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

const busy = () =>
  Object.assign(new Error('database stayed busy; the copy was abandoned before it started writing'), { code: 'SQLITE_BUSY' });

/**
 * Copies `source` over `destination` with SQLite's backup API in one step. Returns the source's
 * page count at the moment of the copy.
 * `beforeWrite` runs once the destination is locked for writing and before any page is written.
 * @param {string} source @param {string} destination @param {number} deadline @param {() => void} [beforeWrite]
 * @returns {Promise<number>}
 */
async function copy(source, destination, deadline, beforeWrite) {
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

/**
 * SHA-256 of a file, hex-encoded, read back from the file with large synchronous reads into one
 * buffer: in this thread nothing else waits on them, and they hash about twice as fast as a stream
 * of 1 MiB chunks read on the event loop.
 * @param {string} file @returns {string}
 */
function sha256(file) {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (!n) break;
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** @param {string} file @param {'full' | 'quick'} mode @returns {string[]} */
function integrity(file, mode, busyTimeout = 0) {
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
      const code = /** @type {{ code?: string }} */ (err).code ?? '';
      if (!found.length || !code.startsWith('SQLITE_CORRUPT')) throw err;
      found.push(/** @type {Error} */ (err).message);
    }
    return found;
  } finally {
    db.close();
  }
}

/**
 * The restoring holder's fencing value against the catalog's, read here right before the copy
 * writes: a holder paused past its lock (SIGSTOP, a long GC) after its last check in the main
 * thread must not copy over what a later holder has done since.
 * @param {{ catalogPath: string; value: number }} fence
 */
function fenceCheck({ catalogPath, value }) {
  const catalog = new Database(catalogPath, { readonly: true, fileMustExist: true });
  catalog.pragma('busy_timeout = 5000');
  const current = catalog.prepare('SELECT value FROM lock_fence WHERE id = 1').pluck();
  return {
    check() {
      const now = Number(current.get());
      if (now !== value) {
        throw Object.assign(new Error(`a newer lock grant exists (fence ${now} > ${value}); the copy was not made`), {
          code: 'LOCK_LOST',
        });
      }
    },
    close: () => catalog.close(),
  };
}

/**
 * @param {import('./sqlite-ops.js').ThreadRequest} req
 * @returns {Promise<import('./sqlite-ops.js').ThreadResult>}
 */
async function run(req) {
  switch (req.op) {
    case 'snapshot': {
      const source = describe(req.source);
      const sourcePages = await copy(req.source, req.destination, Date.now() + req.timeoutMs);
      // fileMustExist: a destination removed under the copy must fail here, not come back as a
      // new empty database that would pass every later check.
      const dest = new Database(req.destination, { fileMustExist: true });
      let pageCount;
      try {
        // A backup of a WAL database is itself marked WAL; make it a self-contained file that
        // opens read-only anywhere without -wal/-shm companions.
        dest.pragma('journal_mode = DELETE');
        pageCount = Number(dest.pragma('page_count', { simple: true }));
      } finally {
        dest.close();
      }
      const bytes = fs.statSync(req.destination).size;
      if (pageCount !== sourcePages || bytes !== pageCount * source.pageSize) {
        throw Object.assign(
          new Error(
            `the copy is incomplete: ${pageCount} of ${sourcePages} pages, ${bytes} bytes where ${sourcePages * source.pageSize} were expected`,
          ),
          { code: 'SNAPSHOT_SHORT' },
        );
      }
      if (!req.hash) return { op: 'snapshot', ...source, pageCount };
      // The copy is final on disk: the caller's quick_check of it starts now on the other core
      // while this thread reads the same file back to hash it.
      parentPort?.postMessage({ ready: true });
      return { op: 'snapshot', ...source, pageCount, sha256: sha256(req.destination) };
    }
    case 'integrity':
      return { op: 'integrity', problems: integrity(req.file, req.mode).filter((m) => m !== 'ok') };
    case 'describe':
      return { op: 'describe', ...describe(req.file) };
    case 'restore': {
      const fence = req.fence ? fenceCheck(req.fence) : undefined;
      try {
        fence?.check();
        await copy(req.source, req.destination, Date.now() + req.timeoutMs, fence?.check);
      } finally {
        fence?.close();
      }
      // From here the live database holds the backup: stopping the thread would only hide that.
      parentPort?.postMessage({ copied: true });
      const live = new Database(req.destination, { fileMustExist: true });
      try {
        live.pragma(`busy_timeout = ${req.timeoutMs}`);
        // The copy lands in the WAL; fold it back so the -wal file does not stay database-sized.
        if (String(live.pragma('journal_mode', { simple: true })) === 'wal') live.pragma('wal_checkpoint(PASSIVE)');
      } finally {
        live.close();
      }
      return { op: 'restore', problems: integrity(req.destination, req.check, req.timeoutMs).filter((m) => m !== 'ok') };
    }
  }
}

run(workerData).then(
  (result) => parentPort?.postMessage({ ok: true, result }),
  (err) => {
    const e = /** @type {{ message?: string; code?: string }} */ (err);
    parentPort?.postMessage({ ok: false, error: { message: e?.message ?? String(err), code: e?.code } });
  },
);
