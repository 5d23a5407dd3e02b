/**
 * The restore side of the SQLite thread: a backup copied into the live database through the backup
 * API, behind the holder's fence and the run's gate, in rollback mode for a new page size, and the
 * WAL checkpointed afterwards. A held copy writes its pages while the restore's checks finish and
 * commits only once the main thread says go.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { copy, copyInSteps } from './thread-backup-api.js';
import { describe } from './thread-inspect.js';

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
 * Waits for the main thread's word on a held copy: go, or abandon (the source failed its checks,
 * or the safety backup could not be published). A run stopped meanwhile, or a word that never
 * comes within `timeoutMs`, abandons it too: the application's writes are never held longer.
 * @param {{ cell: Int32Array; go: number; abandon: number }} hold @param {{ cell: Int32Array; stopped: number }} gate @param {number} timeoutMs
 */
function awaitGo(hold, gate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = Atomics.load(hold.cell, 0);
    if (state === hold.go) return;
    if (state === hold.abandon) throw Object.assign(new Error('the copy was abandoned before it committed'), { code: 'ABANDONED' });
    stopIfStopped(gate);
    if (Date.now() > deadline) {
      throw Object.assign(new Error(`no go for the copy within ${timeoutMs} ms; abandoned before it committed`), { code: 'ABANDONED' });
    }
    Atomics.wait(hold.cell, 0, state, 50);
  }
}

/** @param {{ cell: Int32Array; stopped: number }} gate */
function stopIfStopped(gate) {
  if (Atomics.load(gate.cell, 0) === gate.stopped) {
    throw Object.assign(new Error('stopped before the copy committed'), { code: 'STOPPED' });
  }
}

/**
 * The thread's `restore` request.
 * @param {Extract<import('./sqlite-ops.js').ThreadRequest, { op: 'restore' }>} req
 * @returns {Promise<Extract<import('./sqlite-ops.js').ThreadResult, { op: 'restore' }>>}
 */
export async function restore(req) {
  const fence = req.fence ? fenceCheck(req.fence) : undefined;
  const { gate } = req;
  const beforeWrite = () => {
    fence?.check();
    // The point of no return, decided atomically against a cancel or a lost lock on the main
    // thread: from here the copy runs to its end and they are refused.
    if (Atomics.compareExchange(gate.cell, 0, gate.open, gate.committed) === gate.stopped) {
      throw Object.assign(new Error('stopped before the copy changed the live database'), { code: 'STOPPED' });
    }
  };
  const { hold } = req;
  let switched = false;
  let copied = false;
  try {
    fence?.check();
    if (needsRollbackMode(req.source, req.destination)) {
      // Switching modes writes the live file's header: past the point of no return, so the
      // thread is never stopped halfway and the switch back below always runs. A held copy
      // waits for its go before that.
      if (hold) awaitGo(hold, gate, req.timeoutMs);
      beforeWrite();
      switched = toRollbackMode(req.destination, describe(req.source).pageSize);
      await copy(req.source, req.destination, Date.now() + req.timeoutMs, beforeWrite);
    } else if (hold) {
      // Pages written before the go stay in the copy's open transaction, which readers never see
      // and which is rolled back if it does not come; the point of no return is the last step.
      await copyInSteps(req.source, req.destination, Date.now() + req.timeoutMs, {
        beforeEach: () => stopIfStopped(gate),
        beforeLast: () => {
          awaitGo(hold, gate, req.timeoutMs);
          beforeWrite();
        },
      });
    } else {
      await copy(req.source, req.destination, Date.now() + req.timeoutMs, beforeWrite);
    }
    copied = true;
  } finally {
    fence?.close();
    // Not copied: the live database goes back to WAL mode, as it was.
    if (switched && !copied) backToWal(req.destination);
  }
  // From here the live database holds the backup: stopping the thread would only hide that.
  // The caller's check of it starts now, beside the checkpoint.
  parentPort?.postMessage({ copied: true });
  const checkpointStarted = Date.now();
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
  return { op: 'restore', checkpointMs: Date.now() - checkpointStarted };
}
