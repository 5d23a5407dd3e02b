import { Worker } from 'node:worker_threads';
import { SqliteOpError } from './sqlite-ops.js';

export type ConnectionRequest =
  | { op: 'open'; file: string; readonly?: boolean; busyTimeoutMs?: number }
  | { op: 'run'; sql: string; params?: unknown[] }
  | { op: 'beginRead' }
  | { op: 'endRead' }
  | { op: 'close' };

/** What a statement answers: the rows of a query, or what a change did. */
export type RunResult = { rows: Record<string, unknown>[] } | { changes: number; lastInsertRowid: number };

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; code?: string } };

// Plain JavaScript, as sqlite-thread.js, so it runs from sources and from dist/ without a loader.
const threadUrl = new URL('./connection-thread.js', import.meta.url);

export interface OpenOptions {
  readonly?: boolean;
  /** How long a statement waits for a lock another connection holds. Default 5 s. */
  busyTimeoutMs?: number;
}

/**
 * One SQLite connection that stays open in a worker thread of its own, for work that keeps state
 * between calls (a read transaction held for hours that pins the WAL, a cursor over a large
 * table), where `sqlite-ops.ts` runs each call in a fresh thread. Requests run one at a time, in
 * order. When the thread dies, every waiting request and every later one rejects.
 */
export class SqliteConnection {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new SqliteOpError(reply.error.message, reply.error.code));
    });
    worker.once('error', (err) => this.die(err));
    worker.once('exit', (code) => this.die(new Error(`SQLite connection thread exited with code ${code}`)));
  }

  static async open(file: string, options: OpenOptions = {}): Promise<SqliteConnection> {
    // execArgv: [] — plain JavaScript; inheriting `--import tsx` would load the TypeScript loader.
    const connection = new SqliteConnection(new Worker(threadUrl, { execArgv: [] }));
    try {
      await connection.request({ op: 'open', file, ...options });
    } catch (err) {
      await connection.worker.terminate();
      throw err;
    }
    return connection;
  }

  /** Runs one statement: a query answers its rows, anything else what it changed. */
  run(sql: string, params: unknown[] = []): Promise<RunResult> {
    return this.request({ op: 'run', sql, params }) as Promise<RunResult>;
  }

  /** The rows of a query. */
  async all<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const result = await this.run(sql, params);
    if (!('rows' in result)) throw new Error(`not a query: ${sql}`);
    return result.rows as T[];
  }

  /**
   * Begins a read transaction and takes its snapshot now. Until `endRead`, this connection reads
   * the database as of this moment, and no checkpoint moves the WAL past it.
   */
  async beginRead(): Promise<void> {
    await this.request({ op: 'beginRead' });
  }

  /** Ends the read transaction (none open: nothing to do). */
  async endRead(): Promise<void> {
    await this.request({ op: 'endRead' });
  }

  /** Ends any transaction, closes the connection and stops the thread. Calling it twice is harmless. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.dead) await this.request({ op: 'close' });
      } finally {
        this.dead ??= new Error('the SQLite connection is closed');
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  private request(request: ConnectionRequest): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, request });
    });
  }

  private die(err: Error): void {
    this.dead ??= err;
    for (const waiter of this.pending.values()) waiter.reject(this.dead);
    this.pending.clear();
  }
}
