import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './root.js';

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves when a line of output matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, and the exit code once it has exited. */
  stop(timeoutMs?: number): Promise<number | null>;
  kill(): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<Proc>();

/** Every process this test file started, with its output, for the report of a failing test. */
const started: { name: string; proc: Proc }[] = [];

/** Starts a TypeScript entry point of this repository as a real process. */
export function spawnTs(entry: string, env: Record<string, string>, args: string[] = []): Proc {
  return spawnCommand(entry, process.execPath, ['--import', 'tsx', path.join(ROOT, entry), ...args], env);
}

/**
 * Starts `command` (a program of this repository, named `entry` in reports) as a real process;
 * with `stdin`, its standard input is a pipe the caller writes to (`child.stdin`).
 */
export function spawnCommand(entry: string, command: string, argv: string[], env: Record<string, string>, { stdin = false } = {}): Proc {
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(proc);
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  const proc: Proc = {
    child,
    exited,
    output: () => out,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m) {
            done();
            resolve(m[0]);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`${entry} exited before printing ${pattern}:\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${entry} did not print ${pattern} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  running.add(proc);
  started.push({ name: `${entry} (pid ${child.pid})`, proc });
  return proc;
}

/** A worker process, resolved once it is taking jobs (`readyWithinMs`: how long that may take). */
export async function startWorkerProcess(env: Record<string, string>, readyWithinMs?: number): Promise<Proc> {
  const proc = spawnTs('src/worker/index.ts', { ...env, LOG_LEVEL: 'info' });
  await proc.waitFor(/worker ready/, readyWithinMs);
  return proc;
}

/** Kills whatever a test left running; call from afterAll. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** How much output each process had printed so far; `outputSince` reports what came after. */
export function outputMark(): Map<Proc, number> {
  return new Map(started.map(({ proc }) => [proc, proc.output().length]));
}

/**
 * What the processes printed since `mark` (a process started later: all of it), the last 20 000
 * characters of each, with how each one ended: what a failing test shows of its processes.
 */
export function outputSince(mark: Map<Proc, number>): string[] {
  return started.flatMap(({ name, proc }) => {
    const text = proc.output().slice(mark.get(proc) ?? 0);
    if (!text) return [];
    const { exitCode, signalCode } = proc.child;
    const state = exitCode !== null || signalCode !== null ? `exited ${signalCode ?? exitCode}` : 'running';
    const shown = text.length > 20_000 ? `[…]${text.slice(-20_000)}` : text;
    return [`output of ${name}, ${state}:\n${shown.trimEnd()}`];
  });
}
