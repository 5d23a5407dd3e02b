import { Worker } from 'node:worker_threads';
import { GATE, CancelGate } from '../jobs/cancel.js';
import { LockLostError } from '../domain/errors.js';

export type ThreadRequest =
  | {
      op: 'snapshot';
      source: string;
      destination: string;
      timeoutMs: number;
      /** Also hash the finished copy, read back from disk, after saying it is ready. */
      hash?: boolean;
    }
  | {
      op: 'integrity';
      file: string;
      mode: 'full' | 'quick';
      /** For a database others write to (the live one): how long to wait for their locks. */
      busyTimeout?: number;
    }
  | { op: 'describe'; file: string }
  | {
      op: 'restore';
      source: string;
      destination: string;
      timeoutMs: number;
      /** The holder's fencing value, compared with the catalog's in the thread right before the copy writes. */
      fence?: { catalogPath: string; value: number };
      /** A `CancelGate`'s cell and states: the thread commits it right before its first write (a held copy's last step), unless stopped. */
      gate: { cell: Int32Array } & typeof GATE;
      /**
       * A held copy: written in steps while the cell says wait, committed once it says go, rolled
       * back if it says abandon (see `HOLD`). The gate is then committed right before the last step.
       */
      hold?: { cell: Int32Array } & typeof HOLD;
    };

/** A held copy's states (`thread-restore.js` reads them). */
export const HOLD = { wait: 0, go: 1, abandon: 2 } as const;

export interface SqliteInfo {
  pageSize: number;
  userVersion: number;
  journalMode: string;
}

export type ThreadResult =
  | ({
      op: 'snapshot';
      pageCount: number;
      sha256?: string;
      /** `file`: the live file copied while frozen by a read transaction; `backup-api`: SQLite's backup API. */
      method: 'file' | 'backup-api';
    } & SqliteInfo)
  | ({ op: 'describe' } & SqliteInfo)
  | { op: 'integrity'; problems: string[] }
  | { op: 'restore'; checkpointMs: number };

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

type ThreadMessage<R> =
  { ok: true; result: R } | { ok: false; error: { message: string; code?: string } } | { copied: true } | { ready: true };

/**
 * Runs one request in a thread of its own. When `signal` aborts (the lock the work runs under is
 * lost, or the job is cancelled), the thread is terminated and the promise rejects with the signal's reason.
 * A restore whose copy has begun writing (its gate committed) is left to finish, so its outcome is
 * known: the copy is one SQLite step, which terminating the thread would not stop but only hide.
 * A restore stopped before that rejects once its thread has exited, holding no lock on the live
 * database any more.
 */
function runInThread<R extends ThreadResult>(request: ThreadRequest, signal?: AbortSignal, onReady?: () => void): Promise<R> {
  const gate = request.op === 'restore' ? request.gate.cell : undefined;
  /** Whether an abort is still honoured; for a restore, also closes its gate to the copy. */
  const stoppable = () => !gate || Atomics.compareExchange(gate, 0, GATE.open, GATE.stopped) !== GATE.committed;
  return new Promise((resolve, reject) => {
    if (signal?.aborted && stoppable()) {
      reject(signal.reason as Error);
      return;
    }
    // execArgv: [] — the thread is plain JavaScript; inheriting `--import tsx` would make every
    // thread load the TypeScript loader first, which costs more than the work of a small job.
    const worker = new Worker(threadUrl, { workerData: request, execArgv: [] });
    let settled = false;
    let copied = false;
    let stopped = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      if (copied || !stoppable()) return;
      if (gate) {
        // Settled on the thread's exit: whatever it answers meanwhile, it has committed nothing. A
        // held copy may have an open transaction on the live database: it sees the gate stopped
        // between two steps and rolls it back itself, and its thread then ends.
        stopped = true;
        if (request.op !== 'restore' || !request.hold) void worker.terminate();
        return;
      }
      settle(() => reject(signal!.reason as Error));
      void worker.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (msg: ThreadMessage<R>) => {
      if (stopped) return;
      if ('ready' in msg) {
        if (!settled) onReady?.();
        return;
      }
      if ('copied' in msg) {
        copied = true;
        if (!settled) onReady?.();
        return;
      }
      settle(() => {
        if (msg.ok) resolve(msg.result);
        else if (msg.error.code === 'LOCK_LOST') reject(new LockLostError(msg.error.message));
        else reject(new SqliteOpError(msg.error.message, msg.error.code));
      });
      void worker.terminate();
    });
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) =>
      settle(() => reject(stopped ? (signal!.reason as Error) : new Error(`SQLite thread exited with code ${code} before answering`))),
    );
  });
}

/**
 * A transaction-consistent copy of a live database. A WAL database whose WAL can be checkpointed
 * in full is copied as a file, frozen by a read transaction (one sequential pass); otherwise the
 * copy is one step of SQLite's backup API, so that concurrent writers cannot restart it. In WAL
 * mode writers carry on meanwhile.
 * With `onReady`, the copy is flushed to disk and hashed as read back from the file (`sha256`), and
 * `onReady` is called first, once the copy is complete and final, so that its check can run on
 * the other core meanwhile. Without it, a file copy is left unflushed (a temp file to encode).
 */
export const snapshot = (source: string, destination: string, timeoutMs: number, signal?: AbortSignal, onReady?: () => void) =>
  runInThread<Extract<ThreadResult, { op: 'snapshot' }>>(
    { op: 'snapshot', source, destination, timeoutMs, hash: Boolean(onReady) },
    signal,
    onReady,
  );

/** `integrity_check` (full) or `quick_check`; an empty list means the database is sound. */
export const integrityProblems = async (file: string, mode: 'full' | 'quick', busyTimeout?: number) =>
  (await runInThread<Extract<ThreadResult, { op: 'integrity' }>>({ op: 'integrity', file, mode, ...(busyTimeout ? { busyTimeout } : {}) }))
    .problems;

export const describeDatabase = (file: string) => runInThread<Extract<ThreadResult, { op: 'describe' }>>({ op: 'describe', file });

/** The lock a copy into the live database runs under, as the thread can check it. */
export interface CopyGuard {
  /** The catalog that holds the fencing value. */
  catalogPath: string;
  /** The holder's fencing value: the copy is refused when the catalog's has moved on. */
  fence?: number;
  /** Aborted when the lock is lost or the run cancelled: a copy not yet past its gate is stopped (a held one rolled back). */
  signal?: AbortSignal;
  /**
   * The run's gate (`CancelGate`): the copy commits it right before its first write (a held copy:
   * right before the step that commits it), after which
   * a cancel is refused and an abort no longer stops the copy. Without one, the copy has its own.
   */
  gate?: CancelGate;
  /** Called once the copy has committed, before its check: the live database holds the backup from then on. */
  onCopied?: () => void;
  /**
   * Lets the copy write its pages before the source has passed its checks: it commits once this
   * resolves and is rolled back, leaving the live database as it was, if it rejects (then the
   * copy rejects with code ABANDONED). The gate is committed right before the last step.
   */
  hold?: Promise<unknown>;
}

/** What a copy into the live database took: until it committed, its checkpoint, the check beside it. */
export interface CopyTimes {
  copiedMs: number;
  checkpointMs: number;
  checkMs: number;
}

/** A shared cell the thread waits on, set to go or abandon when `hold` settles. */
function holdCell(hold: Promise<unknown>): { cell: Int32Array } & typeof HOLD {
  const cell = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const say = (state: number) => {
    Atomics.compareExchange(cell, 0, HOLD.wait, state);
    Atomics.notify(cell, 0);
  };
  hold.then(
    () => say(HOLD.go),
    () => say(HOLD.abandon),
  );
  return { cell, ...HOLD };
}

/**
 * Copies a backup into the live database through SQLite's backup API, so connections that hold
 * it open see the restored data on their next transaction instead of a file swapped under them.
 * Returns the live database's problems afterwards, found by `check`: `integrity_check` (full) or
 * `quick_check`, and how long the copy took until it committed. The check starts as soon as the copy has committed, in a thread of its own on the
 * other core, while the copy's thread checkpoints the WAL it wrote into the file: the check reads
 * the restored pages from the WAL or the file, whichever holds them, so the two overlap. With
 * `guard`, a lock lost (or a cancel) before the copy begins writing rejects with LockLostError
 * (or the signal's reason) and leaves the live database as it was; once `guard.gate` is committed,
 * the copy runs to its end and this resolves or rejects with how it ended.
 */
export async function copyIntoLive(
  source: string,
  destination: string,
  timeoutMs: number,
  check: 'full' | 'quick',
  guard?: CopyGuard,
): Promise<{ problems: string[] } & CopyTimes> {
  const started = Date.now();
  let copiedMs = 0;
  let checkMs = 0;
  let checked: Promise<string[]> | undefined;
  const startCheck = () => {
    copiedMs = Date.now() - started;
    try {
      guard?.onCopied?.();
    } catch {
      // Called from the thread's message: a throw here would end the process. The caller records
      // the copy again once this returns.
    }
    return (checked = integrityProblems(destination, check, timeoutMs).finally(() => (checkMs = Date.now() - started - copiedMs)));
  };
  const gate = guard?.gate ?? new CancelGate();
  let checkpointMs: number;
  try {
    ({ checkpointMs } = await runInThread<Extract<ThreadResult, { op: 'restore' }>>(
      {
        op: 'restore',
        source,
        destination,
        timeoutMs,
        ...(guard?.fence !== undefined ? { fence: { catalogPath: guard.catalogPath, value: guard.fence } } : {}),
        gate: { cell: gate.cell, ...GATE },
        ...(guard?.hold ? { hold: holdCell(guard.hold) } : {}),
      },
      guard?.signal,
      startCheck,
    ));
  } catch (err) {
    // The check reads the live database: let it end before the caller acts on the failure.
    await checked?.catch(() => undefined);
    throw err;
  }
  return { problems: await (checked ?? startCheck()), copiedMs, checkpointMs, checkMs };
}
