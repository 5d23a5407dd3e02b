/**
 * The fake application: one program per SQLite build, speaking one protocol, and this driver that
 * every test, helper and the torture harness start it with. `node` is fake-app-node/ on
 * better-sqlite3 (the SQLite this repository bundles), `python` is fake-app-python/ on Python's
 * sqlite3 (another build, older); the two are kept in step.
 *
 * The protocol. argv: `<database> <AppOptions as JSON>`. The program opens the database (switching
 * it to WAL), prints `{"ready":true,"seq","version"}`, then reads one command per line of stdin
 * (JSON, `op` naming it) and answers each with one JSON line: `ok`, and what it reports (`error`
 * when refused). A `run` commits in the background between commands. `exit`, SIGTERM and the end of
 * stdin stop it, close the connection and exit 0 with the counts of `run` (`AppCounts`): in `exit`'s
 * answer, else on a line with `done` (so too when a `run` with `seconds` ends).
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawnCommand, type Proc } from './processes.js';
import { ROOT } from './root.js';

export const BUILDS = ['node', 'python'] as const;
export type Build = (typeof BUILDS)[number];

/** How each build is started (Python without writing bytecode beside its sources). */
const PROGRAMS: Record<Build, [string, ...string[]]> = {
  node: [process.execPath, path.join(ROOT, 'test/helpers/fake-app-node/main.mjs')],
  python: ['python3', '-B', path.join(ROOT, 'test/helpers/fake-app-python')],
};

export interface AppOptions {
  build?: Build;
  /** The connection's busy timeout (5,000 ms by default). */
  busyTimeoutMs?: number;
  /** `PRAGMA synchronous`; absent leaves SQLite's default. */
  synchronous?: 'OFF' | 'NORMAL' | 'FULL';
  /** The connection's `wal_autocheckpoint` in pages; 0 turns it off; absent leaves SQLite's default (1,000). */
  autocheckpoint?: number;
  /** Where `run` writes the last event n committed, in place (so a SIGKILL leaves it true): see `lastN`. */
  lastFile?: string;
  /** The torture harness's truth log: every `tx` commit is appended before its answer, labelled. */
  truth?: { log: string; label: string; scenario: number };
}

export type CheckpointMode = 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE';

/** What one torture transaction writes to `data`: rows inserted, updated and deleted (from a point of the id range), their size, a big blob, a hold before COMMIT. */
export interface TxShape {
  ins: number;
  upd: number;
  del: number;
  updAt: number;
  delAt: number;
  len: number;
  big?: number;
  holdMs?: number;
}

/**
 * What `run` commits, every `everyMs` (0: as fast as it can), until stopped or for `seconds`:
 * `events` a numbered, time-stamped row in `events` and a transfer between two accounts (the
 * balance sum never changes); `transfers` the transfer alone; `generations` one number stamped on
 * rows spread over the whole file and in `generation` (a torn copy shows two). Every `holdEvery`
 * commits the transaction stays open `holdMs` before COMMIT; `checkpoint` runs the application's own
 * checkpoint after every `every` commits, or after each held transaction.
 */
export interface RunOptions {
  work: 'events' | 'transfers' | 'generations';
  everyMs?: number;
  seconds?: number;
  holdMs?: number;
  holdEvery?: number;
  checkpoint?: { mode: CheckpointMode; every?: number; afterHold?: boolean };
}

export type AppOp =
  | ({ op: 'tx' } & TxShape)
  | { op: 'autockpt'; pages: number }
  | { op: 'ckpt'; mode: CheckpointMode }
  | { op: 'reopen' }
  | { op: 'exit' }
  | ({ op: 'journal'; txs: number } & TxShape)
  | { op: 'vacuum' }
  | { op: 'replace' }
  | { op: 'pagesize'; size: number }
  | ({ op: 'run' } & RunOptions)
  | { op: 'count'; table: string };

export type Answer = { ok: boolean; error?: string } & Record<string, unknown>;

/** What `run` did, reported when the program stops. */
export interface AppCounts {
  /** The last event n committed (`events`). */
  lastN: number;
  commits: number;
  errors: number;
  lastError: string;
  maxStallMs: number;
  /** The last generation committed (`generations`). */
  generation: number;
  /** The application's own checkpoints: through, busy, failed, and those that moved pages into the file. */
  checkpoints: { done: number; busy: number; failed: number; moved: number };
}

export class FakeApp {
  version = '';
  /** How many times it was started (`send` starts it again after an exit). */
  starts = 0;
  /** The counts of the last process, once it has stopped. */
  finished: Promise<AppCounts> = new Promise(() => undefined);
  private proc: Proc | undefined;
  private pending: ((line: string) => void) | undefined;

  constructor(
    readonly file: string,
    readonly options: AppOptions = {},
  ) {}

  get build(): Build {
    return this.options.build ?? 'node';
  }

  get running(): boolean {
    const child = this.proc?.child;
    return Boolean(child && child.exitCode === null && child.signalCode === null);
  }

  async start(): Promise<void> {
    const { build: _build, ...options } = this.options;
    const args = [this.file, JSON.stringify(options)];
    const [command, ...argv] = PROGRAMS[this.build];
    const proc = spawnCommand(`fake application (${this.build})`, command, [...argv, ...args], {}, { stdin: true });
    this.proc = proc;
    this.starts++;
    let finish: (counts: AppCounts) => void = () => undefined;
    this.finished = new Promise((resolve) => (finish = resolve));
    readline.createInterface({ input: proc.child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const parsed = JSON.parse(line) as Answer & { done?: boolean; exiting?: boolean };
      if (parsed.done || parsed.exiting) finish(parsed as unknown as AppCounts);
      if (parsed.done) return;
      const waiting = this.pending;
      this.pending = undefined;
      waiting?.(line);
    });
    const ready = JSON.parse(await this.nextLine(20_000)) as { ready: boolean; version: string };
    this.version = ready.version;
  }

  private nextLine(timeoutMs: number): Promise<string> {
    const proc = this.proc!;
    return new Promise((resolve, reject) => {
      const onExit = () => {
        const { exitCode, signalCode } = proc.child;
        done(new Error(`the ${this.build} application exited (${exitCode ?? signalCode}): ${proc.output().slice(-4000)}`));
      };
      const timer = setTimeout(() => done(new Error(`the ${this.build} application did not answer within ${timeoutMs} ms`)), timeoutMs);
      const done = (err: Error | undefined, line?: string) => {
        clearTimeout(timer);
        proc.child.off('exit', onExit);
        this.pending = undefined;
        if (err) reject(err);
        else resolve(line!);
      };
      this.pending = (line) => done(undefined, line);
      proc.child.once('exit', onExit);
    });
  }

  /** Does one command and returns the application's answer; an application that exited is started again first. */
  async send(op: AppOp, timeoutMs = 30_000): Promise<Answer> {
    if (!this.running) await this.start();
    const proc = this.proc!;
    const answer = this.nextLine(timeoutMs);
    proc.child.stdin!.write(`${JSON.stringify(op)}\n`);
    if (op.op !== 'exit') return JSON.parse(await answer) as Answer;
    // It may be gone before its answer is read: the exit is the answer.
    const line = await answer.catch(() => '{"ok":true,"exiting":true}');
    await proc.exited;
    return JSON.parse(line) as Answer;
  }

  /** Starts committing (see `RunOptions`); resolves once the loop is under way. */
  async run(options: RunOptions): Promise<void> {
    const answer = await this.send({ op: 'run', ...options });
    if (!answer.ok) throw new Error(`the ${this.build} application refused to run: ${answer.error}`);
  }

  /** The last event n `run` committed, read from its file (true after a SIGKILL too). */
  lastN(): number {
    if (!this.options.lastFile) throw new Error('the application was started without a lastFile');
    return Number(fs.readFileSync(this.options.lastFile, 'utf8').trim());
  }

  /** Closes its connection and exits (stdin closed), as an application does; its counts. */
  async stop(): Promise<AppCounts> {
    const proc = this.proc;
    if (proc && this.running) {
      proc.child.stdin!.end();
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
      await proc.exited;
      clearTimeout(timer);
    }
    return this.counts();
  }

  /** SIGKILL: the application crashes mid-write. */
  async kill(): Promise<void> {
    await this.proc?.kill();
  }

  /** The counts the stopped application reported. */
  private async counts(): Promise<AppCounts> {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no counts')), 1_000).unref());
    return Promise.race([this.finished, timeout]).catch(() => {
      throw new Error(`the ${this.build} application did not report its counts:\n${this.proc?.output().slice(-2000)}`);
    });
  }
}

/** Starts the application on `file` (the database must exist) and, with `run`, its commit loop. */
export async function startApp(file: string, options: AppOptions & { run?: RunOptions } = {}): Promise<FakeApp> {
  const { run, ...appOptions } = options;
  const app = new FakeApp(file, appOptions);
  await app.start();
  if (run) await app.run(run);
  return app;
}

/** A file beside the database for `lastFile`, unique to one start. */
export const lastFileFor = (file: string) => `${file}.app-${Date.now()}-${Math.random().toString(16).slice(2)}.last`;
