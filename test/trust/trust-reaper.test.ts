/**
 * The reaper and offline recovery: CLI backups run with Redis unreachable (so they hold only the
 * local file lock) while a worker's reaper passes every 500 ms. Real worker process, real CLI
 * processes, real Redis for the worker, real SQLite files.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { DatabaseLock } from '../../src/shared/locking/lock.js';
import { testLogger } from '../helpers/log.js';
import { workerRedis } from '../../src/shared/runtime/redis.js';
import { Reaper } from '../../src/worker/reaper.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { backupFiles, catalogMatchesFiles, createBulkyDb, sha256, startWorker, tempFiles } from '../helpers/faults.js';
import { killAll, type Proc } from '../helpers/processes.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { ROOT } from '../helpers/root.js';

let box: Sandbox;
/** The CLI's environment: Redis unreachable, so it holds only the local lock. */
let offline: Record<string, string>;
let catalog: Catalog;

beforeAll(() => {
  box = sandbox('trust-reaper', {
    REAPER_INTERVAL: '500',
    // The file lock goes stale after max(2 s, LOCK_TTL): short, so the paused and killed CLI cases stay quick.
    LOCK_TTL: '2000',
    MAX_BACKUPS: '50',
  });
  offline = { ...box.env, REDIS_URL: REDIS_DOWN };
  createBulkyDb(box.config.databasePath, 60);
  catalog = new Catalog(box.config.catalogPath);
});

afterEach(async () => {
  await killAll();
});

afterAll(async () => {
  catalog?.close();
  await killAll();
  await box?.cleanup();
});

const dir = () => box.config.backupDir;

/** A CLI backup as a process of its own, so the test can pause or kill it. */
function spawnCliBackup() {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/workstation-backup.js'), 'backup', '--json'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...offline },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

const tempsOf = (pid: number | undefined) => tempFiles(dir()).filter((n) => n.includes(`-${pid}-`));

describe('CLI backups with Redis down while a worker reaps every 500 ms', () => {
  let worker: Proc | undefined;

  beforeEach(async () => {
    worker = await startWorker(box.env);
  });

  afterEach(async () => {
    await worker?.stop();
  });

  it('all complete with the right checksum; the reaper fails none of them', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const run = await runCli(offline, 'backup', '--json');
      expect(run.code, run.stderr).toBe(0);
      expect(run.json.backup.status).toBe('completed');
      ids.push(run.json.backup.id as number);
    }
    // A pass or two after the last backup, to see that nothing is settled afterwards either.
    await new Promise((r) => setTimeout(r, 1_500));
    for (const id of ids) {
      const row = catalog.getBackup(id)!;
      expect(row.status).toBe('completed');
      expect(row.job_id).toMatch(/^cli:/);
      expect(sha256(row.file_path)).toBe(row.checksum);
      expect(fs.statSync(row.file_path).size).toBe(row.file_size_bytes);
    }
    expect(catalog.listBackups({ limit: 1000, status: 'failed' })).toEqual([]);
    expect(tempFiles(dir())).toEqual([]);
    catalogMatchesFiles(dir(), catalog.completedBackups());
  }, 180_000);

  it('a paused CLI backup keeps its row and temp file while the reaper holds the lock, then fails on its own when resumed', async () => {
    const cli = spawnCliBackup();
    const temps = await waitUntil(
      'the CLI to write its temp file',
      () => (tempsOf(cli.child.pid).length ? tempsOf(cli.child.pid) : null),
      60_000,
      5,
    );
    cli.child.kill('SIGSTOP');
    const row = await waitUntil('the CLI backup row', () => catalog.inProgressBackups().find((r) => r.job_id?.startsWith('cli:')));
    // Long past the file lock's stale time (2 s): the reaper takes the lock over, and looks at the row on several passes.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(catalog.getBackup(row.id)!.status).toBe('in_progress');
    for (const t of temps) expect(fs.existsSync(path.join(dir(), t))).toBe(true);

    cli.child.kill('SIGCONT');
    const code = await cli.exited;
    // Its lock was taken over while it was stopped: it must not publish, and says why.
    expect(code, cli.output()).toBe(1);
    const settled = catalog.getBackup(row.id)!;
    expect(settled.status).toBe('failed');
    // The reaper took the lock over (a newer grant) and still left the run to finish or fail by itself.
    expect(settled.error_message).toMatch(/lock was lost|newer lock grant/);
    expect(tempsOf(cli.child.pid)).toEqual([]);
    catalogMatchesFiles(dir(), catalog.completedBackups());
  }, 120_000);

  it('a CLI backup killed with SIGKILL is settled by the reaper: row failed, temp files removed', async () => {
    const cli = spawnCliBackup();
    await waitUntil('the CLI to write its temp file', () => tempsOf(cli.child.pid).length > 0, 60_000, 5);
    const row = await waitUntil('the CLI backup row', () => catalog.inProgressBackups().find((r) => r.job_id?.startsWith('cli:')));
    cli.child.kill('SIGKILL');
    await cli.exited;
    const reaped = await waitUntil('the reaper to settle the row', () => {
      const r = catalog.getBackup(row.id)!;
      return r.status === 'failed' ? r : null;
    });
    expect(reaped.error_message).toMatch(/abandoned/);
    await waitUntil('the dead CLI temp files to be removed', () => tempsOf(cli.child.pid).length === 0);
    catalogMatchesFiles(dir(), catalog.completedBackups());
  }, 120_000);
});

describe('completing a backup', () => {
  it('does not move a row that is no longer in_progress to completed', () => {
    const id = catalog.beginBackup('manual', path.join(dir(), 'never.db'), 'test-complete-guard', 'none');
    catalog.failBackup(id, 'abandoned: settled by the reaper');
    expect(() =>
      catalog.completeBackup(id, {
        filePath: path.join(dir(), 'never.db'),
        fileSize: 1,
        checksum: 'x',
        pageSize: 4096,
        userVersion: 0,
        databaseSize: 4096,
      }),
    ).toThrow(/not in progress|in_progress/);
    const row = catalog.getBackup(id)!;
    expect(row.status).toBe('failed');
    expect(row.checksum).toBeNull();
    expect(row.error_message).toBe('abandoned: settled by the reaper');
  });

  it('fails the backup, and keeps no file, when its row was settled while it ran', async () => {
    const log = testLogger({ logLevel: 'warn' }, 'test');
    const before = backupFiles(dir());
    let rowId: number | undefined;
    await expect(
      createBackup(
        { config: box.config, catalog, log },
        {
          type: 'manual',
          jobId: 'test-settled-while-running',
          onProgress: (p) => {
            // What the old reaper did to a row it took for abandoned, just before the file is published.
            if (p !== 75) return;
            rowId = catalog.getBackupByJob('test-settled-while-running')!.id;
            catalog.failBackup(rowId, 'abandoned: settled by someone else');
          },
        },
      ),
    ).rejects.toThrow();
    const row = catalog.getBackup(rowId!)!;
    expect(row.status).toBe('failed');
    // The reason whoever settled it gave stays: the run that lost its row does not overwrite it.
    expect(row.error_message).toBe('abandoned: settled by someone else');
    expect(catalog.completedBackups().some((b) => b.id === rowId)).toBe(false);
    expect(backupFiles(dir())).toEqual(before);
    expect(tempFiles(dir())).toEqual([]);
  }, 60_000);
});

describe('the reaper and rows that no queue job stands for', () => {
  it("settles a CLI run only when its process is gone (or, from another host, very old), and keeps live processes' temps", async () => {
    const redis = workerRedis(box.config.redisUrl);
    const log = testLogger({ logLevel: 'warn' }, 'test');
    const reaper = new Reaper({
      config: box.config,
      catalog,
      redis,
      lock: new DatabaseLock(redis, box.config.queuePrefix, catalog, box.config.lockTtl),
      log,
      workerId: 'test-reaper',
      stopping: false,
    });
    const live = spawn('sleep', ['60']);
    const deadPid = spawnSync('true').pid;
    const host = hostname();
    const at = new Date().toISOString();
    const row = (jobId: string) => catalog.beginBackup('manual', path.join(dir(), `never-${jobId.replace(/\W/g, '-')}.db`), jobId, 'none');
    try {
      const dead = row(`cli:${host}:${deadPid}:backup:${at}:aaaaaa`);
      const alive = row(`cli:${host}:${live.pid}:backup:${at}:bbbbbb`);
      const foreign = row(`cli:elsewhere:${live.pid}:backup:${at}:cccccc`);
      const foreignOld = row(`cli:elsewhere:${deadPid}:backup:${at}:dddddd`);
      withCatalogDb(catalog.file, (db) =>
        db
          .prepare('UPDATE backup_log SET started_at = ? WHERE id = ?')
          .run(new Date(Date.now() - 25 * 3_600_000).toISOString(), foreignOld),
      );
      const older = row(`cli:backup:${at}:eeeeee`); // written before run ids named their process
      const deadRestore = catalog.beginRestore(`cli:${host}:${deadPid}:restore:${at}:ffffff`, dead).id;
      const aliveRestore = catalog.beginRestore(`cli:${host}:${live.pid}:restore:${at}:999999`, dead).id;
      const liveTemp = path.join(dir(), `.tmp-backup-${alive}-${live.pid}-0123456789ab`);
      const deadTemp = path.join(dir(), `.tmp-backup-${dead}-${deadPid}-ba9876543210.db.gz`);
      fs.writeFileSync(liveTemp, 'being written');
      fs.writeFileSync(deadTemp, 'left behind');

      const result = await reaper.runOnce();
      expect(result.backups.sort()).toEqual([dead, foreignOld].sort());
      expect(result.restores).toEqual([deadRestore]);
      for (const id of [alive, foreign, older]) expect(catalog.getBackup(id)!.status).toBe('in_progress');
      expect(catalog.getRestore(aliveRestore)!.status).toBe('in_progress');
      expect(catalog.getBackup(dead)!.error_message).toMatch(new RegExp(`process ${deadPid} is not running`));
      expect(catalog.getRestore(deadRestore)!.error_message).toMatch(/live database was not changed/);
      expect(fs.existsSync(liveTemp)).toBe(true);
      expect(fs.existsSync(deadTemp)).toBe(false);

      live.kill();
      await new Promise((r) => live.once('exit', r));
      const later = await reaper.runOnce();
      expect(later.backups).toEqual([alive]);
      expect(later.restores).toEqual([aliveRestore]);
      expect(fs.existsSync(liveTemp)).toBe(false);
    } finally {
      live.kill();
      await reaper.stop();
      redis.disconnect();
    }
  }, 60_000);
});
