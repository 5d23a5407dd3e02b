/**
 * Runs inside a worker thread for as long as its owner needs: one better-sqlite3 connection kept
 * open and driven by messages, so work that holds SQLite state for hours (a read transaction
 * that pins the WAL, say) lives off the event loop. Each request is answered in order, with the
 * id it came with. See `connection.ts` for the typed side.
 */
import { parentPort as port } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { threadError } from './thread-error.js';

if (!port) throw new Error('connection-thread.js runs only as a worker thread');
const parentPort = port;

/** @type {import('better-sqlite3').Database | undefined} */
let db;

/** @param {string} message @param {string} code */
const fail = (message, code) => Object.assign(new Error(message), { code });

function opened() {
  if (!db) throw fail('the connection is not open', 'NOT_OPEN');
  return db;
}

/** @param {import('./connection.js').ConnectionRequest} request */
function handle(request) {
  switch (request.op) {
    case 'open': {
      if (db) throw fail('the connection is already open', 'ALREADY_OPEN');
      db = new Database(request.file, { readonly: request.readonly ?? false, fileMustExist: true });
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(request.busyTimeoutMs ?? 5_000))}`);
      return { journalMode: String(db.pragma('journal_mode', { simple: true })) };
    }
    case 'run': {
      const statement = opened().prepare(request.sql);
      const params = request.params ?? [];
      if (statement.reader) return { rows: statement.all(...params) };
      const info = statement.run(...params);
      return { changes: info.changes, lastInsertRowid: Number(info.lastInsertRowid) };
    }
    case 'beginRead': {
      const conn = opened();
      if (conn.inTransaction) throw fail('a transaction is already open on this connection', 'IN_TRANSACTION');
      conn.exec('BEGIN');
      // A deferred transaction takes its snapshot at its first read: read now, so the snapshot
      // (and the WAL frames it pins) is the one of this moment, not of some later request.
      try {
        conn.prepare('SELECT count(*) FROM sqlite_schema').get();
      } catch (err) {
        conn.exec('ROLLBACK');
        throw err;
      }
      return { held: true };
    }
    case 'endRead': {
      const conn = opened();
      if (conn.inTransaction) conn.exec('COMMIT');
      return { held: false };
    }
    case 'close': {
      if (db?.inTransaction) db.exec('ROLLBACK');
      db?.close();
      db = undefined;
      return { closed: true };
    }
    default:
      throw fail(`unknown request ${String(/** @type {{ op?: unknown }} */ (request).op)}`, 'BAD_REQUEST');
  }
}

parentPort.on('message', (/** @type {{ id: number; request: import('./connection.js').ConnectionRequest }} */ message) => {
  try {
    parentPort.postMessage({ id: message.id, ok: true, result: handle(message.request) });
  } catch (err) {
    parentPort.postMessage({ id: message.id, ok: false, error: threadError(err) });
  }
});
