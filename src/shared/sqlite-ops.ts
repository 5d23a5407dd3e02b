import { Worker } from 'node:worker_threads';

export type ThreadRequest =
  | { op: 'snapshot'; source: string; destination: string; timeoutMs: number }
  | { op: 'integrity'; file: string; mode: 'full' | 'quick' }
  | { op: 'describe'; file: string }
  | { op: 'restore'; source: string; destination: string; timeoutMs: number };

export interface SqliteInfo {
  pageSize: number;
  userVersion: number;
  journalMode: string;
}

export type ThreadResult =
  | ({ op: 'snapshot' } & SqliteInfo)
  | ({ op: 'describe' } & SqliteInfo)
  | { op: 'integrity'; problems: string[] }
  | { op: 'restore'; problems: string[] };

/** An error raised inside the thread, with SQLite's or Node's code kept. */
export class SqliteOpError extends Error {
  override name = 'SqliteOpError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

// Plain JavaScript, so the same file runs from sources (tsx, vitest) and from dist/ without a loader.
const threadUrl = new URL('./sqlite-thread.js', import.meta.url);

function runInThread<R extends ThreadResult>(request: ThreadRequest): Promise<R> {
  return new Promise((resolve, reject) => {
    // execArgv: [] — the thread is plain JavaScript; inheriting `--import tsx` would make every
    // thread load the TypeScript loader first, which costs more than the work of a small job.
    const worker = new Worker(threadUrl, { workerData: request, execArgv: [] });
    let settled = false;
    worker.once('message', (msg: { ok: true; result: R } | { ok: false; error: { message: string; code?: string } }) => {
      settled = true;
      if (msg.ok) resolve(msg.result);
      else reject(new SqliteOpError(msg.error.message, msg.error.code));
      void worker.terminate();
    });
    worker.once('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`SQLite thread exited with code ${code} before answering`));
      settled = true;
    });
  });
}

/**
 * A transaction-consistent copy of a live database, taken in one step of SQLite's backup API so
 * that concurrent writers cannot restart it. In WAL mode writers carry on meanwhile.
 */
export const snapshot = (source: string, destination: string, timeoutMs: number) =>
  runInThread<Extract<ThreadResult, { op: 'snapshot' }>>({ op: 'snapshot', source, destination, timeoutMs });

/** `integrity_check` (full) or `quick_check`; an empty list means the database is sound. */
export const integrityProblems = async (file: string, mode: 'full' | 'quick') =>
  (await runInThread<Extract<ThreadResult, { op: 'integrity' }>>({ op: 'integrity', file, mode })).problems;

export const describeDatabase = (file: string) => runInThread<Extract<ThreadResult, { op: 'describe' }>>({ op: 'describe', file });

/**
 * Copies a backup into the live database through SQLite's backup API, so connections that hold
 * it open see the restored data on their next transaction instead of a file swapped under them.
 * Returns the live database's integrity problems afterwards.
 */
export const copyIntoLive = async (source: string, destination: string, timeoutMs: number) =>
  (await runInThread<Extract<ThreadResult, { op: 'restore' }>>({ op: 'restore', source, destination, timeoutMs })).problems;
