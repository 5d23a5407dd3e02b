import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../src/shared/catalog/catalog.js';
import { failWhenTaken, tryAcquireDatabaseLock } from '../src/shared/locking/acquire.js';
import { backupNow } from '../src/shared/operations/backup-now.js';
import { restoreLatestValid } from '../src/shared/operations/restore-latest-valid.js';
import type { LockedRun, OperationDeps } from '../src/shared/operations/run.js';
import { sandbox, type Sandbox } from './helpers/env.js';
import { testLogger } from './helpers/log.js';
import { openCatalog } from './helpers/producer.js';
import { createWorkstationDb, query, writeMarker } from './helpers/workstation-db.js';

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
