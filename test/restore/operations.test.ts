import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import Database from 'better-sqlite3';
import { failWhenTaken, tryAcquireDatabaseLock } from '../../src/shared/locking/acquire.js';
import { backupNow } from '../../src/shared/operations/backup-now.js';
import { restoreLatestValid } from '../../src/shared/operations/restore-latest-valid.js';
import { restoreOne } from '../../src/shared/operations/restore-one.js';
import type { LockedRun, OperationDeps } from '../../src/shared/operations/run.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { testLogger } from '../helpers/log.js';
import { openCatalog } from '../helpers/producer.js';
import { createWorkstationDb, query, writeMarker } from '../helpers/workstation-db.js';

let box: Sandbox;
let catalog: Catalog;
/** Redis out of reach: the operations hold the local file lock alone, as a CLI run in an outage does. */
let deps: OperationDeps;
const notes: string[] = [];

beforeAll(() => {
  box = sandbox('operations', { MAX_BACKUPS: '50' });
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  fs.mkdirSync(box.config.backupDir, { recursive: true, mode: 0o700 });
  catalog = openCatalog(box.config);
  deps = { config: box.config, catalog, log: testLogger(box.config, 'test'), redisLock: undefined };
});

afterAll(async () => {
  catalog?.close();
  await box?.cleanup();
});

const run = (runId: string): LockedRun => ({
  runId,
  holder: `test:${runId}`,
  whenTaken: failWhenTaken,
  report: { progress: () => undefined, note: (m) => notes.push(m) },
});

const marker = () => query<{ v: string }>(box.config.databasePath, 'SELECT v FROM marker').v;

describe('restore the newest valid backup, as an operation', () => {
  it('a rerun of a run that had chosen its backup restores that one, not a newer one taken since', async () => {
    writeMarker(box.config.databasePath, 'chosen');
    const chosen = (await backupNow(deps, { ...run('backup-1'), type: 'manual' })).row;
    // The first run recorded its choice and died before copying anything in.
    catalog.beginRestore('job-7', chosen.id);
    writeMarker(box.config.databasePath, 'newer');
    const newer = (await backupNow(deps, { ...run('backup-2'), type: 'manual' })).row;
    expect(newer.id).toBeGreaterThan(chosen.id);
    writeMarker(box.config.databasePath, 'live');

    const rerun = await restoreLatestValid(deps, run('job-7'));
    expect(rerun.backupId).toBe(chosen.id);
    expect(rerun.row).toMatchObject({ backup_id: chosen.id, status: 'completed' });
    expect(marker()).toBe('chosen');
    expect(rerun.via).toBe('file');
    expect(notes).toContain('Redis is not reachable: holding the local lock only');
  });

  it('fails at once, changing nothing, while another holder has the lock', async () => {
    const other = await tryAcquireDatabaseLock({ ...deps, holder: 'cli:someone-else', note: () => undefined });
    if (!other.guard) throw new Error('expected the lock to be free');
    try {
      writeMarker(box.config.databasePath, 'untouched');
      await expect(restoreLatestValid(deps, run('job-8'))).rejects.toMatchObject({
        code: 'lock_held',
        message: expect.stringMatching(/cli:someone-else/),
      });
      expect(marker()).toBe('untouched');
      expect(catalog.getRestoreByJob('job-8')).toBeUndefined();
    } finally {
      await other.release();
    }
  });
});

describe('restore across a change of the page size by the application', () => {
  /** What the application does to change it: out of WAL mode, the new size, VACUUM, back to WAL. */
  function changePageSize(file: string, size: number): void {
    const db = new Database(file);
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma(`page_size = ${size}`);
      db.exec('VACUUM');
      db.pragma('journal_mode = WAL');
    } finally {
      db.close();
    }
  }
  const live = () => box.config.databasePath;
  const pragma = (name: string) => query<Record<string, string | number>>(live(), `PRAGMA ${name}`)[name];

  it('with the application connected: refused with page_size_mismatch before anything is written; the live database stays as it was, in WAL mode', async () => {
    writeMarker(live(), 'old page size');
    const backup = (await backupNow(deps, { ...run('ps-backup-1'), type: 'manual' })).row;
    changePageSize(live(), 8192);
    writeMarker(live(), 'new page size');
    const app = new Database(live());
    try {
      app.prepare('SELECT count(*) FROM marker').get();
      await expect(restoreOne(deps, { ...run('ps-restore-1'), backupId: backup.id })).rejects.toMatchObject({
        code: 'page_size_mismatch',
        message: expect.stringMatching(/page size 4096 differs from the live database's 8192.*stop the application.*safety backup \d+/),
      });
    } finally {
      app.close();
    }
    expect(marker()).toBe('new page size');
    expect(pragma('page_size')).toBe(8192);
    expect(pragma('journal_mode')).toBe('wal');
    expect(catalog.getRestoreByJob('ps-restore-1')).toMatchObject({ status: 'failed', restored_at: null });
  });

  it("with the application stopped: restored at the backup's page size, back in WAL mode, with the backup's content", async () => {
    writeMarker(live(), 'old page size again');
    const again = (await backupNow(deps, { ...run('ps-backup-2'), type: 'manual' })).row;
    const backedUpAt = pragma('page_size');
    changePageSize(live(), 16384);
    writeMarker(live(), 'newest');
    const outcome = await restoreOne(deps, { ...run('ps-restore-2'), backupId: again.id });
    expect(outcome.row.status).toBe('completed');
    expect(marker()).toBe('old page size again');
    expect(backedUpAt).toBe(8192);
    expect(pragma('page_size')).toBe(backedUpAt);
    expect(pragma('journal_mode')).toBe('wal');
    expect(pragma('integrity_check')).toBe('ok');
  });
});
