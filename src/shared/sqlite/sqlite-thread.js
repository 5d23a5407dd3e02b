/**
 * Runs inside a worker thread: every SQLite call that can take seconds on a large database (a
 * consistent copy, an integrity check, a restore), so the process's event loop keeps renewing
 * BullMQ and Redis locks and answering health checks meanwhile.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { getSystemErrorMap } from 'node:util';
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
 * SQLite's backup API cannot change the page size of a database in WAL mode: whether `source`'s
 * differs from that of `destination`, a database in WAL mode (the application changed its page
 * size since the backup).
 * @param {string} source @param {string} destination @returns {boolean}
 */
function needsRollbackMode(source, destination) {
  if (!fs.existsSync(destination)) return false;
  const live = describe(destination);
  return live.journalMode === 'wal' && live.pageSize !== describe(source).pageSize;
}

/**
 * Puts the destination in rollback-journal mode for a copy at another page size, which SQLite
 * allows only with no other connection open: with the application running this throws
 * PAGE_SIZE_MISMATCH, having written nothing. Returns true (the caller switches back to WAL).
 * @param {string} destination @param {number} pageSize @returns {boolean}
 */
function toRollbackMode(destination, pageSize) {
  const dest = new Database(destination, { fileMustExist: true });
  try {
    const livePageSize = Number(dest.pragma('page_size', { simple: true }));
    let mode = 'wal';
    try {
      mode = String(dest.pragma('journal_mode = DELETE', { simple: true }));
    } catch {
      // Busy: another connection (the application) has it open.
    }
    if (mode !== 'delete') {
      throw Object.assign(
        new Error(
          `the backup's page size ${pageSize} differs from the live database's ${livePageSize}: SQLite changes the page size of a WAL database only with no other connection open; stop the application and restore again, or restore to a file (--output) and swap it in`,
        ),
        { code: 'PAGE_SIZE_MISMATCH' },
      );
    }
    return true;
  } finally {
    dest.close();
  }
}

/** @param {string} file */
function backToWal(file) {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
}

/** The byte offsets of the file format's write and read versions: 2 for WAL, 1 for a rollback journal. */
const WRITE_VERSION = 18;

/** Something to wait on for a synchronous pause in this thread. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Freezes the live database's file as a snapshot: with every WAL frame checkpointed into the file,
 * a read transaction started then holds SQLite's read mark 0 (it reads the file alone), and while
 * any reader holds that mark no checkpoint can write into the file (a checkpointer needs mark 0
 * exclusively). So, until the returned reader ends its transaction, the file's first
 * `pageCount` pages are exactly that transaction's snapshot, whatever writers do meanwhile: they
 * carry on in the WAL, which grows until the reader lets go.
 *
 * The last frames are checkpointed while a write transaction of our own holds writers off (a few
 * milliseconds: most of the WAL was checkpointed just before). Returns undefined, changing nothing,
 * when the file cannot be frozen that way: not in WAL mode, writers busy past a few seconds, no
 * right to write (a checkpoint writes into the file), or another reader keeping frames out of the
 * file (the WAL archiver's read transaction does, on purpose).
 * @param {string} source @param {number} deadline
 * @returns {{ reader: import('better-sqlite3').Database; pageCount: number; pageSize: number } | undefined}
 */
function frozenFile(source, deadline) {
  /** @type {import('better-sqlite3').Database | undefined} */
  let reader;
  /** @type {import('better-sqlite3').Database | undefined} */
  let writer;
  try {
    // Both connections open the file for writing: a checkpoint writes into it. Neither changes a row.
    reader = new Database(source, { fileMustExist: true });
    if (String(reader.pragma('journal_mode', { simple: true })) !== 'wal') return close(reader);
    const db = reader;
    const checkpoint = () =>
      /** @type {{ busy: number; log: number; checkpointed: number }[]} */ (db.pragma('wal_checkpoint(PASSIVE)'))[0] ?? {
        busy: 1,
        log: -1,
        checkpointed: -1,
      };
    checkpoint();
    writer = new Database(source, { fileMustExist: true });
    writer.pragma(`busy_timeout = ${Math.max(0, Math.min(5_000, deadline - Date.now()))}`);
    writer.exec('BEGIN IMMEDIATE');
    let frozen = false;
    try {
      // Another connection's checkpoint (the application's autocheckpoint) may be running: PASSIVE
      // then answers busy at once rather than wait, so it is asked again for a few milliseconds.
      let outcome = checkpoint();
      for (let tries = 0; outcome.busy && tries < 20; tries++) {
        Atomics.wait(PAUSE, 0, 0, 2);
        outcome = checkpoint();
      }
      const { busy, log, checkpointed } = outcome;
      if (busy || log < 0 || log !== checkpointed) return close(reader);
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM sqlite_schema').get();
      frozen = true;
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
      if (!frozen) reader.close();
    }
    return {
      reader,
      pageCount: Number(reader.pragma('page_count', { simple: true })),
      pageSize: Number(reader.pragma('page_size', { simple: true })),
    };
  } catch {
    writer?.close();
    reader?.close();
    // Busy writers, a locked file, a database this process may only read: the backup API's copy
    // waits for the writers instead, reads through a read-only connection, and reports any other
    // error itself.
    return undefined;
  }
}

/** @param {import('better-sqlite3').Database} db @returns {undefined} */
function close(db) {
  db.close();
  return undefined;
}

/**
 * Copies a frozen database file (its first `bytes`) into a new file, and marks the copy as a
 * rollback-journal database (a WAL database's file says WAL) so that it opens read-only anywhere
 * without -wal/-shm companions. Not flushed: the caller decides.
 *
 * The copy is the kernel's (`cp`, which uses `copy_file_range`): about four times faster here than
 * reading and writing through this thread's buffers. On a filesystem that can share extents
 * (XFS with reflink, btrfs) the kernel may share them instead of copying, exactly as `cp` does;
 * the copy is still a separate file that later writes to the database never change.
 * @param {string} source @param {string} destination @param {number} bytes
 * @returns {number} the destination's open file descriptor
 */
function copyFrozen(source, destination, bytes) {
  // The destination is this backup's own temp file: one left by an earlier run of the same job
  // that died is replaced, as the backup API would.
  fs.rmSync(destination, { force: true });
  copyInChild(source, destination);
  const output = fs.openSync(destination, 'r+');
  try {
    // The copy takes the database's mode; a backup is private to its owner.
    fs.fchmodSync(output, 0o600);
    const size = fs.fstatSync(output).size;
    if (size < bytes) {
      throw Object.assign(new Error(`the database file holds ${size} bytes, fewer than its ${bytes}`), { code: 'SNAPSHOT_SHORT' });
    }
    if (size > bytes) fs.ftruncateSync(output, bytes);
    const versions = Buffer.alloc(2);
    fs.readSync(output, versions, 0, 2, WRITE_VERSION);
    if (versions[0] === 2) fs.writeSync(output, Buffer.from([1, 1]), 0, 2, WRITE_VERSION);
    return output;
  } catch (err) {
    fs.closeSync(output);
    throw err;
  }
}

/**
 * `cp` in a process of its own. This process must never open and close a descriptor of the live
 * database itself: POSIX advisory locks belong to the process, and closing any descriptor of a
 * file drops every lock the process holds on it, SQLite's included. The WAL archiver's connections
 * in this process would then hold no lock on the database file, and the application's last
 * connection, closing, would checkpoint and delete a `-wal` the archiver has not read yet.
 * @param {string} source @param {string} destination
 */
function copyInChild(source, destination) {
  const run = spawnSync('cp', ['--reflink=auto', '--', source, destination], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.error) throw run.error;
  if (run.status !== 0) {
    const said = String(run.stderr).trim();
    // The error as the copy in this process would have thrown it (ENOSPC, EACCES…): the backup
    // explains those to the operator by their code.
    throw Object.assign(new Error(`cp ${source} failed: ${said || `exit ${run.status ?? run.signal}`}`), { code: errnoOf(said) });
  }
}

/** Errno names by the text `cp` prints for them (strerror; libuv's texts are the same but for a few). */
const ERRNO_BY_TEXT = new Map([
  ...[...getSystemErrorMap().values()].map(([name, text]) => /** @type {[string, string]} */ ([text.toLowerCase(), name])),
  ['input/output error', 'EIO'],
  ['disk quota exceeded', 'EDQUOT'],
]);

/** @param {string} said @returns {string | undefined} */
function errnoOf(said) {
  const text = /: ([^:]+)$/.exec(said.split('\n').at(-1) ?? '')?.[1];
  return text ? ERRNO_BY_TEXT.get(text.toLowerCase()) : undefined;
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

/** @param {string} file @param {number} pageCount @param {number} expected @param {number} pageSize */
function checkComplete(file, pageCount, expected, pageSize) {
  const bytes = fs.statSync(file).size;
  if (pageCount !== expected || bytes !== pageCount * pageSize) {
    throw Object.assign(
      new Error(`the copy is incomplete: ${pageCount} of ${expected} pages, ${bytes} bytes where ${expected * pageSize} were expected`),
      { code: 'SNAPSHOT_SHORT' },
    );
  }
}

/**
 * A snapshot copied from the frozen file (see frozenFile): one sequential pass at the speed of
 * `cp`, where the backup API would copy page by page through SQLite's cache. The read transaction
 * ends as soon as the bytes are copied; writers were never held except for the last checkpoint.
 *
 * The flush to disk then runs on libuv's pool while this thread hashes the copy read back from the
 * file, and the caller's quick_check reads it on the other core: the three overlap instead of the
 * checks waiting for the disk. Nothing counts the copy as a backup before this returns, which is
 * after the flush succeeded, so the hash is of the bytes that are on disk. A copy that is not
 * hashed here is a temp file for compression or encryption: it is not flushed at all (the file
 * made from it is).
 * @param {Extract<import('./sqlite-ops.js').ThreadRequest, { op: 'snapshot' }>} req
 * @param {import('./sqlite-ops.js').SqliteInfo} source
 * @param {NonNullable<ReturnType<typeof frozenFile>>} frozen
 */
async function fileSnapshot(req, source, frozen) {
  let fd;
  try {
    fd = copyFrozen(req.source, req.destination, frozen.pageCount * frozen.pageSize);
  } finally {
    frozen.reader.close();
  }
  try {
    const copy = new Database(req.destination, { readonly: true, fileMustExist: true });
    let pageCount;
    try {
      pageCount = Number(copy.pragma('page_count', { simple: true }));
    } finally {
      copy.close();
    }
    checkComplete(req.destination, pageCount, frozen.pageCount, frozen.pageSize);
    /** @type {Extract<import('./sqlite-ops.js').ThreadResult, { op: 'snapshot' }>} */
    const result = { op: 'snapshot', ...source, pageSize: frozen.pageSize, pageCount, method: 'file' };
    if (!req.hash) return result;
    const out = fd;
    const flushed = new Promise((resolve, reject) => fs.fsync(out, (err) => (err ? reject(err) : resolve(undefined))));
    flushed.catch(() => undefined);
    parentPort?.postMessage({ ready: true });
    const digest = sha256(req.destination);
    await flushed;
    return { ...result, sha256: digest };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * @param {import('./sqlite-ops.js').ThreadRequest} req
 * @returns {Promise<import('./sqlite-ops.js').ThreadResult>}
 */
async function run(req) {
  switch (req.op) {
    case 'snapshot': {
      const source = describe(req.source);
      const deadline = Date.now() + req.timeoutMs;
      const frozen = source.journalMode === 'wal' ? frozenFile(req.source, deadline) : undefined;
      if (frozen) return fileSnapshot(req, source, frozen);
      const sourcePages = await copy(req.source, req.destination, deadline);
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
      checkComplete(req.destination, pageCount, sourcePages, source.pageSize);
      /** @type {Extract<import('./sqlite-ops.js').ThreadResult, { op: 'snapshot' }>} */
      const result = { op: 'snapshot', ...source, pageCount, method: 'backup-api' };
      if (!req.hash) return result;
      // The copy is final on disk: the caller's quick_check of it starts now on the other core
      // while this thread reads the same file back to hash it.
      parentPort?.postMessage({ ready: true });
      return { ...result, sha256: sha256(req.destination) };
    }
    case 'integrity':
      return { op: 'integrity', problems: integrity(req.file, req.mode, req.busyTimeout ?? 0).filter((m) => m !== 'ok') };
    case 'describe':
      return { op: 'describe', ...describe(req.file) };
    case 'restore': {
      const fence = req.fence ? fenceCheck(req.fence) : undefined;
      const { gate } = req;
      const beforeWrite = () => {
        fence?.check();
        // The point of no return, decided atomically against a cancel or a lost lock on the main
        // thread: from here the copy runs to its end and they are refused.
        if (Atomics.compareExchange(gate.cell, 0, gate.open, gate.committed) === gate.stopped) {
          throw Object.assign(new Error('stopped before the copy wrote its first page'), { code: 'STOPPED' });
        }
      };
      let switched = false;
      let copied = false;
      try {
        fence?.check();
        if (needsRollbackMode(req.source, req.destination)) {
          // Switching modes writes the live file's header: past the point of no return, so the
          // thread is never stopped halfway and the switch back below always runs.
          beforeWrite();
          switched = toRollbackMode(req.destination, describe(req.source).pageSize);
        }
        await copy(req.source, req.destination, Date.now() + req.timeoutMs, beforeWrite);
        copied = true;
      } finally {
        fence?.close();
        // Not copied: the live database goes back to WAL mode, as it was.
        if (switched && !copied) backToWal(req.destination);
      }
      // From here the live database holds the backup: stopping the thread would only hide that.
      // The caller's check of it starts now, beside the checkpoint.
      parentPort?.postMessage({ copied: true });
      const live = new Database(req.destination, { fileMustExist: true });
      try {
        live.pragma(`busy_timeout = ${req.timeoutMs}`);
        // Copied in rollback mode for a new page size: back to WAL mode, as the application had it.
        if (switched) live.pragma('journal_mode = WAL');
        // The copy lands in the WAL; fold it back so the -wal file does not stay database-sized.
        else if (String(live.pragma('journal_mode', { simple: true })) === 'wal') live.pragma('wal_checkpoint(PASSIVE)');
      } finally {
        live.close();
      }
      return { op: 'restore' };
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
