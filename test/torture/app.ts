/**
 * The application as a process of its own: one of two builds (better-sqlite3, SQLite 3.53; Python's
 * sqlite3, SQLite 3.40.1), driven one operation at a time over stdin, restarted when it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AppOp } from './plan.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const BUILDS = ['node', 'python'] as const;
export type Build = (typeof BUILDS)[number];

export type Answer = { ok: boolean; error?: string } & Record<string, unknown>;

export class AppProcess {
  private child: ChildProcess | undefined;
  private pending: ((line: string) => void) | undefined;
  private stderr = '';
  version = '';
  starts = 0;

  constructor(
    readonly build: Build,
    private readonly databasePath: string,
    private readonly logFile: string,
    private readonly scenario: number,
  ) {}

  get running(): boolean {
    return Boolean(this.child && this.child.exitCode === null && this.child.signalCode === null);
  }

  async start(): Promise<void> {
    const args = [this.databasePath, this.logFile, this.build, String(this.scenario)];
    const child =
      this.build === 'node'
        ? spawn(process.execPath, [path.join(HERE, 'app-node.mjs'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn('python3', [path.join(HERE, 'app-python.py'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.starts++;
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const waiting = this.pending;
      this.pending = undefined;
      waiting?.(line);
    });
    const ready = JSON.parse(await this.nextLine(20_000)) as { ready: boolean; version: string };
    this.version = ready.version;
  }

  private nextLine(timeoutMs: number): Promise<string> {
    const child = this.child!;
    return new Promise((resolve, reject) => {
      const onExit = () => done(new Error(`the ${this.build} application exited (${child.exitCode ?? child.signalCode}): ${this.stderr}`));
      const timer = setTimeout(() => done(new Error(`the ${this.build} application did not answer within ${timeoutMs} ms`)), timeoutMs);
      const done = (err: Error | undefined, line?: string) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        this.pending = undefined;
        if (err) reject(err);
        else resolve(line!);
      };
      this.pending = (line) => done(undefined, line);
      child.once('exit', onExit);
    });
  }

  /** Does one operation and returns the application's answer; an application that exited is started again first. */
  async send(op: AppOp, timeoutMs = 30_000): Promise<Answer> {
    if (!this.running) await this.start();
    const child = this.child!;
    const answer = this.nextLine(timeoutMs);
    child.stdin!.write(`${JSON.stringify(op)}\n`);
    if (op.op !== 'exit') return JSON.parse(await answer) as Answer;
    // It may be gone before its answer is read: the exit is the answer.
    const line = await answer.catch(() => '{"ok":true,"exiting":true}');
    if (this.running) await new Promise((r) => child.once('exit', r));
    return JSON.parse(line) as Answer;
  }

  /** Closes its connection and exits (stdin closed). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
