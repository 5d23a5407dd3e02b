import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './root.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, for `--json` runs; tests read it like a response body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** Runs the CLI the way an operator does (`bin/workstation-backup.js`), as a separate process. */
export function runCli(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin/workstation-backup.js'), ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        timeout: 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code, stdout, stderr, json });
      },
    );
  });
}

/** Redis URL where nothing listens: "Redis is down" without touching the shared server. */
export const REDIS_DOWN = 'redis://127.0.0.1:6399';
