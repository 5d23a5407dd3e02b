import { spawn, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { nowMs } from './stats.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface CommandResult {
  ms: number;
  timedOut: boolean;
  code: number | null;
  stderr: string;
  stdout: string;
}

/** Runs a command to completion, or kills it (and its shell's children) after `timeoutMs`. */
export function runCommand(cmd: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const start = nowMs();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: nowMs() - start, timedOut, code, stderr, stdout });
    });
  });
}

/** `sh -c script` with positional arguments, so file names are never parsed by the shell. */
export const runShell = (script: string, args: string[], timeoutMs: number) => runCommand('sh', ['-c', script, 'sh', ...args], timeoutMs);

/** A worker process of this repository, with the event-loop probe loaded. */
export class WorkerProcess {
  private out = '';
  private waiters = new Set<() => void>();

  private constructor(readonly child: ChildProcess) {
    const onData = (c: Buffer) => {
      this.out += c.toString();
      for (const w of this.waiters) w();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  }

  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', path.join(ROOT, 'bench/lib/loop-probe.js'), path.join(ROOT, 'src/worker/index.ts')],
      {
        cwd: ROOT,
        // "worker ready" is logged at info; the job logs at info are part of what a worker does.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const w = new WorkerProcess(child);
    try {
      await w.waitFor(/worker ready/, 60_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return w;
  }

  private waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        pattern.lastIndex = 0;
        const m = pattern.exec(this.out.slice(from));
        if (m) {
          done();
          resolve(m);
        } else if (this.child.exitCode !== null) {
          done();
          reject(new Error(`worker exited:\n${this.out.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`worker did not print ${pattern} within ${timeoutMs} ms:\n${this.out.slice(-2000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The worker's JSON log lines with this message, in order. */
  logged(msg: string): Record<string, unknown>[] {
    return this.out.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        return entry.msg === msg ? [entry] : [];
      } catch {
        return [];
      }
    });
  }

  /** The longest event-loop stall since the previous call, in ms. */
  async loopStall(): Promise<number> {
    const from = this.out.length;
    this.child.kill('SIGUSR2');
    const m = await this.waitFor(/LOOP_PROBE (\{[^\n]*\})\n/, 10_000, from);
    return (JSON.parse(m[1]!) as { maxMs: number }).maxMs;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The same probe for the benchmark's own process, around in-process calls of the real code. */
export class LoopMonitor {
  private histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  constructor() {
    this.histogram.enable();
  }
  /** The longest stall since the previous call, in ms. */
  take(): number {
    const maxMs = Math.max(0, this.histogram.max / 1e6 - 10);
    this.histogram.reset();
    return maxMs;
  }
  stop(): void {
    this.histogram.disable();
  }
}

/** Removes every Redis key under a BullMQ prefix. */
export async function deletePrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
