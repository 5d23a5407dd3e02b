/**
 * Runs inside a worker thread: every SQLite call that can take seconds on a large database (a
 * consistent copy, an integrity check, a restore), so the process's event loop keeps renewing
 * BullMQ and Redis locks and answering health checks meanwhile. This file is the thread's entry
 * (`sqlite-ops.ts` starts it by path): it runs the one request it was started with and answers it.
 * The snapshot side is `thread-snapshot.js`, the restore side `thread-restore.js`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { describe, integrity } from './thread-inspect.js';
import { restore } from './thread-restore.js';
import { threadError } from './thread-error.js';
import { snapshot } from './thread-snapshot.js';

/**
 * @param {import('./sqlite-ops.js').ThreadRequest} req
 * @returns {Promise<import('./sqlite-ops.js').ThreadResult>}
 */
async function run(req) {
  switch (req.op) {
    case 'snapshot':
      return snapshot(req);
    case 'integrity':
      return { op: 'integrity', problems: integrity(req.file, req.mode, req.busyTimeout ?? 0).filter((m) => m !== 'ok') };
    case 'describe':
      return { op: 'describe', ...describe(req.file) };
    case 'restore':
      return restore(req);
  }
}

run(workerData).then(
  (result) => parentPort?.postMessage({ ok: true, result }),
  (err) => parentPort?.postMessage({ ok: false, error: threadError(err) }),
);
