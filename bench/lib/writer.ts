import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface WriterSamples {
  latencies: number[];
  errors: number;
  lastError: string;
}

/** Handle on the writer process (see writer-process.ts). */
export class Writer {
  private constructor(private readonly child: ChildProcess) {}

  static async start(file: string, everyMs: number): Promise<Writer> {
    const child = fork(fileURLToPath(new URL('./writer-process.ts', import.meta.url)), [file, String(everyMs)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited with ${code} before it was ready`)));
    });
    return new Writer(child);
  }

  /** Starts a new measurement window. */
  mark(): void {
    this.child.send({ type: 'mark' });
  }

  /** The commits of the window since the last mark or take. */
  take(): Promise<WriterSamples> {
    return new Promise((resolve) => {
      const onMessage = (msg: { type: string } & WriterSamples) => {
        if (msg.type !== 'samples') return;
        this.child.off('message', onMessage);
        resolve({ latencies: msg.latencies, errors: msg.errors, lastError: msg.lastError });
      };
      this.child.on('message', onMessage);
      this.child.send({ type: 'take' });
    });
  }

  /** Samples of a window of `ms` with nothing else going on. */
  async idleWindow(ms: number): Promise<WriterSamples> {
    this.mark();
    await new Promise((r) => setTimeout(r, ms));
    return this.take();
  }

  /** Ends the process as a crash would (SIGKILL): no close, no checkpoint, no goodbye. */
  async crash(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
