import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createWorkstationDb, query, writeMarker } from '../helpers/workstation-db.js';
import { ROOT } from '../helpers/root.js';

let box: Sandbox;
/** The CLI's environment with Redis down: the restore works under the local file lock. */
let offline: Record<string, string>;
let backupId: number;

beforeAll(async () => {
  box = sandbox('cli-confirm');
  offline = { ...box.env, REDIS_URL: REDIS_DOWN };
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  setMarker('in the backup');
  const backup = await runCli(offline, 'backup', '--json');
  expect(backup.code, backup.stderr).toBe(0);
  backupId = backup.json.backup.id as number;
});

afterAll(async () => {
  await box?.cleanup();
});

const setMarker = (value: string) => writeMarker(box.config.databasePath, value);

const marker = () => query<{ v: string }>(box.config.databasePath, 'SELECT v FROM marker').v;

/** The live database's files and their bytes, to show a refused restore touched nothing. */
function liveFiles(): Record<string, string> {
  const dir = path.dirname(box.config.databasePath);
  const base = path.basename(box.config.databasePath);
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((n) => n.startsWith(base))
      .map((n) => [
        n,
        createHash('sha256')
          .update(fs.readFileSync(path.join(dir, n)))
          .digest('hex'),
      ]),
  );
}

function restoreRows(): number {
  const db = new Database(box.config.catalogPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM restore_log').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Runs `restore` on a real terminal (a pty from util-linux `script`), waits for the question and
 * types `answer` and Enter. Resolves with everything the terminal showed and the exit code.
 */
function restoreOnTerminal(answer: string): Promise<{ code: number | null; screen: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, path.join(ROOT, 'bin/workstation-backup.js'), 'restore', String(backupId)].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'dumb', ...offline },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let answered = false;
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const onData = (chunk: Buffer) => {
    screen += chunk.toString();
    if (!answered && screen.includes('[y/N]')) {
      answered = true;
      child.stdin.write(`${answer}\r`);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

describe('restore asks before it overwrites the live database (defect 11)', () => {
  it('refuses with exit 2 and changes nothing when there is no terminal and no --yes', async () => {
    setMarker('live, newer than the backup');
    const before = liveFiles();

    const r = await runCli(offline, 'restore', String(backupId));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no terminal to confirm on: pass --yes/);
    const json = await runCli(offline, 'restore', '--latest-valid', '--json');
    expect(json.code).toBe(2);
    expect(json.json).toMatchObject({ success: false, error: { code: 'confirmation_required' } });

    expect(liveFiles()).toEqual(before);
    expect(restoreRows()).toBe(0);
    expect(marker()).toBe('live, newer than the backup');
  });

  it('on a terminal, shows the backup and the live database, and leaves everything as it was on "n"', async () => {
    setMarker('live, newer than the backup');
    const before = liveFiles();

    const { code, screen } = await restoreOnTerminal('n');
    expect(screen).toContain(`About to restore backup ${backupId} (manual, taken `);
    expect(screen).toContain(`It replaces the live database ${box.config.databasePath} (`);
    expect(screen).toContain('Replace the live database? [y/N]');
    expect(screen).toMatch(/restore cancelled; nothing was changed/);
    expect(code).toBe(1);

    expect(liveFiles()).toEqual(before);
    expect(restoreRows()).toBe(0);
  });

  it('on a terminal, restores on "y"', async () => {
    setMarker('live, newer than the backup');
    const { code, screen } = await restoreOnTerminal('y');
    expect(code, screen).toBe(0);
    expect(screen).toContain(`Restored backup ${backupId}`);
    expect(marker()).toBe('in the backup');
    expect(restoreRows()).toBe(1);
  });

  it('restores without asking with --yes, terminal or not', async () => {
    setMarker('live, newer than the backup');
    const r = await runCli(offline, 'restore', String(backupId), '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.restore.status).toBe('completed');
    expect(marker()).toBe('in the backup');
    expect(restoreRows()).toBe(2);
  });
});
