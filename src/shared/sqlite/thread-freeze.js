/**
 * Freezing the live database's file for a snapshot, inside the SQLite thread: a read transaction
 * on read mark 0 that keeps every checkpoint out of the file while it is copied.
 */
import Database from 'better-sqlite3';

/** Something to wait on for a synchronous pause in this thread. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** @typedef {{ reader: import('better-sqlite3').Database; pageCount: number; pageSize: number }} FrozenFile */

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
 * @returns {FrozenFile | undefined}
 */
export function frozenFile(source, deadline) {
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
