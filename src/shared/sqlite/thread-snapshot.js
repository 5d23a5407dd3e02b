/**
 * The snapshot side of the SQLite thread: a transaction-consistent copy of the live database, from
 * its frozen file or through the backup API, checked complete and, when asked, flushed and hashed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { copy } from './thread-backup-api.js';
import { copyFrozen } from './thread-file-copy.js';
import { frozenFile } from './thread-freeze.js';
import { describe } from './thread-inspect.js';

/** @typedef {Extract<import('./sqlite-ops.js').ThreadRequest, { op: 'snapshot' }>} SnapshotRequest */
/** @typedef {Extract<import('./sqlite-ops.js').ThreadResult, { op: 'snapshot' }>} SnapshotResult */

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
 * @param {SnapshotRequest} req
 * @param {import('./sqlite-ops.js').SqliteInfo} source
 * @param {import('./thread-freeze.js').FrozenFile} frozen
 * @returns {Promise<SnapshotResult>}
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
    /** @type {SnapshotResult} */
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
 * The thread's `snapshot` request: the frozen file copied when the live database allows it,
 * otherwise one step of the backup API.
 * @param {SnapshotRequest} req @returns {Promise<SnapshotResult>}
 */
export async function snapshot(req) {
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
  /** @type {SnapshotResult} */
  const result = { op: 'snapshot', ...source, pageCount, method: 'backup-api' };
  if (!req.hash) return result;
  // The copy is final on disk: the caller's quick_check of it starts now on the other core
  // while this thread reads the same file back to hash it.
  parentPort?.postMessage({ ready: true });
  return { ...result, sha256: sha256(req.destination) };
}
