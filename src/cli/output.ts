import readline from 'node:readline';
import cliProgress from 'cli-progress';
import type { BackupRow } from '../shared/catalog/catalog.js';
import { formatBytes } from '../shared/domain/format.js';

/** Exit codes a script can branch on. */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (backup failed, restore failed or was rolled back). */
  failed: 1,
  /** Bad arguments or configuration. */
  usage: 2,
  /** Another backup or restore holds the database lock. */
  busy: 3,
  /** No such backup. */
  notFound: 4,
  /** The backup (or every candidate) failed verification. */
  invalid: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with a message and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly code = 'error',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Human text by default, one JSON document with `--json`; progress only for a person at a terminal. */
export class Output {
  constructor(readonly json: boolean) {}

  result(human: string, data: unknown): void {
    process.stdout.write(this.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
  }

  note(text: string): void {
    if (!this.json) process.stderr.write(`${text}\n`);
  }

  error(err: CliError): void {
    if (this.json)
      process.stdout.write(`${JSON.stringify({ success: false, error: { code: err.code, message: err.message } }, null, 2)}\n`);
    else process.stderr.write(`error: ${err.message}\n`);
  }

  /** Whether a person can be asked: a question needs a terminal to answer it on. */
  get canAsk(): boolean {
    return Boolean(process.stdin.isTTY);
  }

  /**
   * Asks a yes/no question on the terminal (on stderr, so `--json` output stays one document).
   * Only `y` or `yes` is a yes; Enter, end of input and Ctrl-C are a no.
   */
  async confirm(question: string): Promise<boolean> {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await new Promise<string>((resolve) => {
        rl.once('close', () => resolve(''));
        rl.once('SIGINT', () => {
          process.stderr.write('\n');
          resolve('');
        });
        rl.question(question, resolve);
      });
      return /^\s*y(es)?\s*$/i.test(answer);
    } finally {
      rl.close();
    }
  }

  /** A progress bar on stderr while `fn` runs; `update(percent, stage)` moves it. */
  async progress<T>(fn: (update: (percent: number, stage?: string) => void) => Promise<T>): Promise<T> {
    if (this.json || !process.stderr.isTTY) return fn(() => undefined);
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: '{stage} [{bar}] {percentage}%', hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { stage: 'starting'.padEnd(12) });
    try {
      return await fn((percent, stage) => bar.update(Math.min(100, Math.round(percent)), stage ? { stage: stage.padEnd(12) } : {}));
    } finally {
      bar.stop();
    }
  }
}

export function table(rows: (string | number | null | undefined)[][], header: string[]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function bytes(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : formatBytes(n);
}

/** How a backup file is encoded, for a person: `gzip+encrypted`, `none`. */
export const encodingLabel = (b: BackupRow) => [b.compression ?? 'none', b.encryption ? 'encrypted' : ''].filter(Boolean).join('+');
