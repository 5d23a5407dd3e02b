/**
 * The catalog on its own: real SQLite files in a temp directory, no Redis, no processes. Rows the
 * service never writes (old dates) are crafted through a connection of the test's own.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { BackupNotInProgress, Catalog, type ImportedBackup } from '../../src/shared/catalog/catalog.js';
import { DAMAGED_REASON_PREFIX } from '../../src/shared/domain/errors.js';
import { withCatalogDb } from '../helpers/catalog-db.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-catalog-'));
let dir: string;
let file: string;
let catalog: Catalog;
const opened: Catalog[] = [];

/** Another process's connection to the same catalog file. */
const another = () => {
  const c = new Catalog(file);
  opened.push(c);
  return c;
};

const DONE = { fileSize: 100, checksum: 'ab'.repeat(32), pageSize: 4096, userVersion: 3, databaseSize: 8192 };
const complete = (c: Catalog, id: number) => c.completeBackup(id, { ...DONE, filePath: c.getBackup(id)!.file_path });
const backupFile = (name: string) => path.join(dir, `workstation-backup-${name}.db`);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(root, 'case-'));
  file = path.join(dir, 'backup-catalog.db');
  catalog = another();
});

afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('catalog: opening', () => {
  it('creates its file private to the service, in WAL mode, and offers no connection to run SQL through', () => {
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
    expect((catalog as unknown as Record<string, unknown>).db).toBeUndefined();
    expect(Object.values(catalog).some((v) => v && typeof v === 'object' && 'prepare' in v)).toBe(false);
  });

  it('opens read-only without creating anything', () => {
    const id = catalog.beginBackup('manual', backupFile('a'), null, 'none');
    const reader = new Catalog(file, { readonly: true });
    opened.push(reader);
    expect(reader.getBackup(id)?.status).toBe('in_progress');
    expect(() => reader.beginBackup('manual', backupFile('b'), null, 'none')).toThrow(/readonly/);
    expect(() => new Catalog(path.join(dir, 'none.db'), { readonly: true })).toThrow();
    expect(fs.existsSync(path.join(dir, 'none.db'))).toBe(false);
  });
});

describe('catalog: a backup row from start to end', () => {
  it('moves in_progress → completed, recording the details; a rerun of the job takes its own row over', () => {
    const id = catalog.beginBackup('scheduled', backupFile('1'), 'job-1', 'gzip');
    expect(catalog.getBackup(id)).toMatchObject({ status: 'in_progress', job_id: 'job-1', compression: 'gzip', checksum: null });
    catalog.failBackup(id, 'worker died');
    // The job runs again: same row, reset, with what this run uses.
    expect(catalog.beginBackup('scheduled', backupFile('2'), 'job-1', 'zstd', 'key-1')).toBe(id);
    expect(catalog.getBackup(id)).toMatchObject({
      status: 'in_progress',
      file_path: backupFile('2'),
      error_message: null,
      completed_at: null,
      compression: 'zstd',
      encryption: 'key-1',
    });
    catalog.completeBackup(id, { ...DONE, filePath: backupFile('2') });
    expect(catalog.getBackup(id)).toMatchObject({
      status: 'completed',
      file_size_bytes: 100,
      checksum: DONE.checksum,
      page_size: 4096,
      user_version: 3,
      database_size_bytes: 8192,
    });
    expect(catalog.getBackupByJob('job-1')?.id).toBe(id);
    expect(catalog.getBackupByFile('workstation-backup-2.db')?.id).toBe(id);
    expect(catalog.countBackups()).toBe(1);
  });

  it('completes a row only from in_progress: a row settled meanwhile stays as it was, and the run is told', () => {
    const settled = catalog.beginBackup('manual', backupFile('s'), null, 'none');
    expect(another().failBackup(settled, 'abandoned: its job is gone')).toBe(true);
    expect(() => complete(catalog, settled)).toThrow(BackupNotInProgress);
    expect(() => complete(catalog, settled)).toThrow(/is failed, not in progress/);
    expect(catalog.getBackup(settled)).toMatchObject({ status: 'failed', error_message: 'abandoned: its job is gone', checksum: null });

    const gone = catalog.beginBackup('manual', backupFile('g'), null, 'none');
    catalog.deleteBackup(gone);
    expect(() => catalog.completeBackup(gone, { ...DONE, filePath: backupFile('g') })).toThrow(/gone from the catalog/);
    expect(catalog.getBackup(gone)).toBeUndefined();
  });

  it('fails a row only from in_progress, and says whether it did', () => {
    const id = catalog.beginBackup('manual', backupFile('f'), null, 'none');
    complete(catalog, id);
    expect(catalog.failBackup(id, 'lost the lock')).toBe(false);
    expect(catalog.getBackup(id)).toMatchObject({ status: 'completed', error_message: null, file_size_bytes: 100 });

    const running = catalog.beginBackup('manual', backupFile('r'), null, 'none');
    expect(catalog.failBackup(running, 'disk full')).toBe(true);
    expect(catalog.getBackup(running)).toMatchObject({ status: 'failed', error_message: 'disk full', file_size_bytes: null });
    expect(catalog.failBackup(running, 'a second word')).toBe(false);
    expect(catalog.getBackup(running)?.error_message).toBe('disk full');
    expect(catalog.inProgressBackups()).toEqual([]);
  });

  it('tells whether another row lists a file', () => {
    const a = catalog.beginBackup('manual', backupFile('same'), 'job-a', 'none');
    expect(catalog.fileListedElsewhere(backupFile('same'), a)).toBe(false);
    const b = catalog.beginBackup('manual', backupFile('same'), 'job-b', 'none');
    expect(catalog.fileListedElsewhere(backupFile('same'), a)).toBe(true);
    expect(catalog.fileListedElsewhere(backupFile('same'), b)).toBe(true);
  });
});

describe('catalog: restores', () => {
  it('keeps one row per job; fails it only from in_progress; lists the ones in progress', () => {
    const backup = catalog.beginBackup('manual', backupFile('x'), null, 'none');
    const first = catalog.beginRestore('restore-1', backup);
    expect(catalog.beginRestore('restore-1', backup).id).toBe(first.id);
    const other = catalog.beginRestore('restore-2', backup);
    expect(catalog.inProgressRestores().map((r) => r.id)).toEqual([first.id, other.id]);

    expect(catalog.updateRestore(first.id, { status: 'completed', completed_at: new Date().toISOString() }).status).toBe('completed');
    expect(catalog.failRestoreInProgress(first.id, 'lost')).toBe(false);
    expect(catalog.getRestore(first.id)).toMatchObject({ status: 'completed', error_message: null });
    expect(catalog.failRestoreInProgress(other.id, 'lost')).toBe(true);
    expect(catalog.getRestoreByJob('restore-2')).toMatchObject({ status: 'failed', error_message: 'lost' });
    expect(catalog.inProgressRestores()).toEqual([]);
  });
});

describe('catalog: importing a backup known from its manifest', () => {
  const imported = (id: number, name: string, jobId: string | null = null): ImportedBackup => ({
    id,
    type: 'manual',
    filePath: backupFile(name),
    fileSize: 10,
    startedAt: '2025-01-01T00:00:00.000Z',
    completedAt: '2025-01-01T00:00:01.000Z',
    checksum: 'cd'.repeat(32),
    jobId,
    compression: 'none',
    encryption: null,
    pageSize: 4096,
    userVersion: 0,
    databaseSize: 4096,
  });

  it('keeps its id, and refuses an id already taken or a file a completed row already lists', () => {
    expect(catalog.importBackup(imported(40, 'forty', 'job-40'))).toBe('imported');
    expect(catalog.getBackup(40)).toMatchObject({ status: 'completed', file_path: backupFile('forty'), job_id: 'job-40' });
    expect(catalog.importBackup(imported(40, 'another'))).toBe('id_taken');
    // The same file name under another directory is the same backup, moved.
    expect(catalog.importBackup({ ...imported(41, 'forty'), filePath: path.join(dir, 'elsewhere', 'workstation-backup-forty.db') })).toBe(
      'file_taken',
    );
    expect(catalog.getBackup(41)).toBeUndefined();
    // A job id seen twice (a manifest copied by hand) does not block the import; the row just has none.
    expect(catalog.importBackup(imported(42, 'forty-two', 'job-40'))).toBe('imported');
    expect(catalog.getBackup(42)?.job_id).toBeNull();
    expect(catalog.countBackups()).toBe(2);
  });

  it('counts deleted ids in the id ceiling, and new rows continue above imported ones', () => {
    expect(catalog.backupIdCeiling()).toBe(0);
    expect(catalog.importBackup(imported(7, 'seven'))).toBe('imported');
    catalog.deleteBackup(7);
    expect(catalog.backupIdCeiling()).toBe(7);
    expect(catalog.beginBackup('manual', backupFile('next'), null, 'none')).toBe(8);
  });
});

describe('catalog: leases', () => {
  it('holds a backup for its holders until each lease is released or expires', async () => {
    catalog.lease(1, 'verify:a', 60_000);
    catalog.lease(1, 'restore:b', 60_000);
    catalog.lease(2, 'verify:c', 150);
    expect(another().leasedBackupIds()).toEqual(new Set([1, 2]));
    catalog.unlease(1, 'verify:a');
    expect(catalog.leasedBackupIds()).toEqual(new Set([1, 2]));
    catalog.unlease(1, 'restore:b');
    expect(catalog.leasedBackupIds()).toEqual(new Set([2]));
    await new Promise((r) => setTimeout(r, 250));
    expect(catalog.leasedBackupIds()).toEqual(new Set());
    // Taking a lease again renews it.
    catalog.lease(2, 'verify:c', 60_000);
    expect(catalog.leasedBackupIds()).toEqual(new Set([2]));
  });
});

describe('catalog: fencing', () => {
  it('hands out larger values each time, whichever connection asks', () => {
    const other = another();
    expect(catalog.currentFence()).toBe(0);
    const values = [catalog.nextFence(), other.nextFence(), catalog.nextFence(), other.nextFence()];
    expect(values).toEqual([1, 2, 3, 4]);
    expect(catalog.currentFence()).toBe(4);
    const reader = new Catalog(file, { readonly: true });
    opened.push(reader);
    expect(reader.currentFence()).toBe(4);
  });
});

describe('catalog: statistics', () => {
  it('sees a commit by this connection or by another one at once, cache or not', () => {
    expect(catalog.statistics()).toEqual({ totalBackups: 0, totalSize: 0, oldestBackup: null, newestBackup: null, failedBackups: 0 });
    const a = catalog.beginBackup('manual', backupFile('a'), null, 'none');
    complete(catalog, a);
    expect(catalog.statistics()).toMatchObject({ totalBackups: 1, totalSize: 100, failedBackups: 0 });
    expect(catalog.statistics()).toMatchObject({ totalBackups: 1 });

    const other = another();
    const b = other.beginBackup('manual', backupFile('b'), null, 'none');
    complete(other, b);
    other.failBackup(other.beginBackup('manual', backupFile('c'), null, 'none'), 'disk full');
    expect(catalog.statistics()).toMatchObject({ totalBackups: 2, totalSize: 200, failedBackups: 1 });

    // Rows written by something else entirely (a tool, a restored catalog) count too.
    withCatalogDb(file, (db) => db.prepare('UPDATE backup_log SET file_size_bytes = 1000 WHERE id = ?').run(b));
    expect(catalog.statistics()).toMatchObject({ totalBackups: 2, totalSize: 1100 });
    other.deleteBackup(a);
    expect(catalog.statistics()).toMatchObject({ totalBackups: 1, totalSize: 1000, failedBackups: 1 });
    expect(catalog.backupCounts()).toEqual(
      expect.arrayContaining([
        { type: 'manual', status: 'completed', n: 1 },
        { type: 'manual', status: 'failed', n: 1 },
      ]),
    );
  });
});

describe('catalog: database damage', () => {
  const damagedBackup = (c: Catalog) => {
    const id = c.beginBackup('scheduled', backupFile(`damaged-${Math.random()}`), null, 'none');
    c.failBackup(id, `${DAMAGED_REASON_PREFIX}: quick_check: row 3 missing from index`);
    return id;
  };

  it('is reported from the newest backup that found it until a later backup or restore completes', async () => {
    expect(catalog.databaseDamage()).toBeUndefined();
    const sound = catalog.beginBackup('manual', backupFile('sound'), null, 'none');
    complete(catalog, sound);
    // A restore completed before the damage was found says nothing about it.
    const early = catalog.beginRestore('restore-early', sound);
    catalog.updateRestore(early.id, { status: 'completed', completed_at: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 5));

    const first = damagedBackup(catalog);
    expect(catalog.databaseDamage()).toMatchObject({ backupId: first, message: expect.stringContaining('row 3 missing') });
    // Another kind of failure does not clear it, and a newer damaged one is the one reported.
    catalog.failBackup(catalog.beginBackup('manual', backupFile('full'), null, 'none'), 'disk full');
    const second = damagedBackup(catalog);
    expect(another().databaseDamage()?.backupId).toBe(second);

    const later = catalog.beginBackup('manual', backupFile('later'), null, 'none');
    expect(catalog.databaseDamage()?.backupId).toBe(second); // in progress proves nothing yet
    complete(catalog, later);
    expect(catalog.databaseDamage()).toBeUndefined();

    const third = damagedBackup(catalog);
    const restore = catalog.beginRestore('restore-after', sound);
    catalog.updateRestore(restore.id, { status: 'failed', completed_at: new Date(Date.now() + 1000).toISOString() });
    expect(catalog.databaseDamage()?.backupId).toBe(third);
    const fixed = catalog.beginRestore('restore-fix', sound);
    catalog.updateRestore(fixed.id, { status: 'completed', completed_at: new Date(Date.now() + 1000).toISOString() });
    expect(catalog.databaseDamage()).toBeUndefined();
  });
});

describe('catalog: settings', () => {
  it('stores JSON values, and updates one from what is stored', () => {
    expect(catalog.getSetting('runtime-config')).toBeUndefined();
    expect(catalog.updateSetting('runtime-config', (stored) => ({ ...(stored as object), maxBackups: 5 }))).toEqual({ maxBackups: 5 });
    catalog.setSetting('other', [1, 2]);
    const next = another().updateSetting('runtime-config', (stored) => ({ ...(stored as object), verifyAfterBackup: true }));
    expect(next).toEqual({ maxBackups: 5, verifyAfterBackup: true });
    expect(catalog.getSetting('runtime-config')).toEqual(next);
    expect(catalog.getSetting('other')).toEqual([1, 2]);
    // A failing update leaves the stored value alone.
    expect(() =>
      catalog.updateSetting('runtime-config', () => {
        throw new Error('refused');
      }),
    ).toThrow('refused');
    expect(catalog.getSetting('runtime-config')).toEqual(next);
  });
});

describe('catalog: pruning history', () => {
  const DAY = 86_400_000;
  const ago = (days: number, plusMs = 0) => new Date(Date.now() - days * DAY + plusMs).toISOString();

  it('deletes old failed backups, old verifications and old finished restores, keeping what it promises', () => {
    const ids = withCatalogDb(file, (db) => {
      const backup = db.prepare(
        `INSERT INTO backup_log (backup_type, file_path, started_at, completed_at, status, error_message) VALUES ('manual', ?, ?, ?, ?, ?)`,
      );
      const add = (status: string, at: string | null, started = at) =>
        Number(
          backup.run(backupFile(`${status}-${Math.random()}`), started, at, status, status === 'failed' ? 'disk full' : null)
            .lastInsertRowid,
        );
      const oldFailed = add('failed', ago(100));
      const oldFailedSqliteDate = add('failed', ago(100).replace('T', ' ').slice(0, 19));
      const oldFailedUnreadable = add('failed', 'last spring');
      const oldFailedNoEnd = add('failed', null, ago(100));
      const oldCompleted = add('completed', ago(300));
      const recentFailed = add('failed', ago(5));

      const verify = db.prepare(
        `INSERT INTO verification (backup_id, mode, verified_at, valid, message, checks) VALUES (?, ?, ?, 1, 'ok', '[]')`,
      );
      const v = (mode: string, at: string) => Number(verify.run(oldCompleted, mode, at).lastInsertRowid);
      const oldFull = v('full', ago(200));
      const oldQuicks = [v('quick', ago(199)), v('quick', ago(198)), v('quick', ago(197))];
      const recentQuick = v('quick', ago(1));

      const restore = db.prepare(`INSERT INTO restore_log (job_id, backup_id, started_at, completed_at, status) VALUES (?, ?, ?, ?, ?)`);
      const r = (job: string, status: string, at: string) =>
        Number(restore.run(job, oldCompleted, at, status === 'in_progress' ? null : at, status).lastInsertRowid);
      const oldRunning = r('running', 'in_progress', ago(90));
      const oldRestores = [
        r('old-0', 'completed', ago(80)),
        r('old-1', 'failed', ago(79)),
        r('old-2', 'rolled_back', ago(78)),
        r('old-3', 'completed', ago(77)),
      ];
      // The newest backup row is an old failure: the last word on backups stays.
      const newestFailed = add('failed', ago(50));
      return {
        oldFailed,
        oldFailedSqliteDate,
        oldFailedUnreadable,
        oldFailedNoEnd,
        oldCompleted,
        recentFailed,
        oldFull,
        oldQuicks,
        recentQuick,
        oldRunning,
        oldRestores,
        newestFailed,
      };
    });

    const pruned = catalog.pruneHistory(new Date(Date.now() - 30 * DAY), 2);
    const left = withCatalogDb(file, (db) => ({
      backups: (db.prepare('SELECT id FROM backup_log ORDER BY id').all() as { id: number }[]).map((r) => r.id),
      verifications: (db.prepare('SELECT id FROM verification ORDER BY id').all() as { id: number }[]).map((r) => r.id),
      restores: (db.prepare('SELECT id FROM restore_log ORDER BY id').all() as { id: number }[]).map((r) => r.id),
    }));

    expect(left.backups).toEqual([ids.oldFailedUnreadable, ids.oldCompleted, ids.recentFailed, ids.newestFailed]);
    // The newest two, and the last of each mode (the old full one, which retention trusts).
    expect(left.verifications).toEqual([ids.oldFull, ids.oldQuicks[2], ids.recentQuick]);
    // One in progress whatever its age, and the newest two finished.
    expect(left.restores).toEqual([ids.oldRunning, ids.oldRestores[2], ids.oldRestores[3]]);
    expect(pruned).toEqual({ backups: 3, verifications: 2, restores: 2 });
    expect(catalog.lastFullVerification(ids.oldCompleted)?.id).toBe(ids.oldFull);
    expect(catalog.lastVerification(ids.oldCompleted)?.id).toBe(ids.recentQuick);

    // Run again: nothing more goes.
    expect(catalog.pruneHistory(new Date(Date.now() - 30 * DAY), 2)).toEqual({ backups: 0, verifications: 0, restores: 0 });
  });
});

describe('catalog: WAL generations', () => {
  it('a generation ended at its last sync point keeps reaching it (never less than its last segment)', () => {
    const first = catalog.wal.beginGeneration('archiving started', 4096, null);
    const later = new Date(Date.now() + 60_000).toISOString();
    catalog.wal.endGeneration(first.id, 'gap: the -wal file was deleted', later);
    expect(catalog.wal.generation(first.id)).toMatchObject({ end_reason: 'gap: the -wal file was deleted', last_read_at: later });

    const second = catalog.wal.beginGeneration('the -wal file was deleted', 4096, null);
    withCatalogDb(file, (db) => db.prepare('UPDATE wal_generation SET last_read_at = ? WHERE id = ?').run(later, second.id));
    catalog.wal.endGeneration(second.id, 'a restore ran', new Date(Date.now() - 60_000).toISOString());
    expect(catalog.wal.generation(second.id)!.last_read_at).toBe(later);
  });
});
