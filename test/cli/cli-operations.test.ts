import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

let box: Sandbox;
/** Redis down: the CLI holds the local lock alone, as in an outage. */
let offline: Record<string, string>;
/** A process id that ran and is gone. */
let deadPid: number;

beforeAll(() => {
  box = sandbox('cli-ops');
  offline = { ...box.env, REDIS_URL: REDIS_DOWN };
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  fs.mkdirSync(box.config.backupDir, { recursive: true, mode: 0o700 });
  deadPid = spawnSync('true').pid!;
});

afterAll(async () => {
  await box?.cleanup();
});

/** A temp file as a backup or restore of process `pid` leaves it when it dies mid-way. */
function leftover(label: string, pid: number): string {
  const file = path.join(box.config.backupDir, `.tmp-${label}-${pid}-0123456789ab`);
  fs.writeFileSync(file, Buffer.alloc(64 * 1024, 1));
  return file;
}

describe('the CLI runs the operations the worker runs', () => {
  it('removes the temps a dead backup or restore left before its own backup and restore, and keeps a live process’s', async () => {
    const deadBackup = leftover('backup-7', deadPid);
    const liveBackup = leftover('backup-8', process.pid);
    const backup = await runCli(offline, 'backup', '--json');
    expect(backup.code, backup.stderr).toBe(0);
    expect(fs.existsSync(deadBackup)).toBe(false);
    expect(fs.existsSync(liveBackup)).toBe(true);

    const deadRestore = leftover(`restore-${backup.json.backup.id}`, deadPid);
    const restore = await runCli(offline, 'restore', String(backup.json.backup.id), '--yes', '--json');
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json.lock).toBe('file');
    expect(fs.existsSync(deadRestore)).toBe(false);
    expect(fs.existsSync(liveBackup)).toBe(true);
  });
});
