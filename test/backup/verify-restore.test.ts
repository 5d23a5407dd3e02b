import { createHash } from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { testLogger } from '../helpers/log.js';
import { DatabaseLock } from '../../src/shared/locking/lock.js';
import { workerRedis } from '../../src/shared/runtime/redis.js';
import { restoreBackup } from '../../src/shared/restore/restore.js';
import { waitUntil, type Sandbox } from '../helpers/env.js';
import { spawnTs } from '../helpers/processes.js';
import { useStack } from '../helpers/stack.js';
import { auth } from '../helpers/producer.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, integrity, query } from '../helpers/workstation-db.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { startApp } from '../helpers/fake-app.js';
import { safetyJobId } from '../../src/shared/jobs/job-ids.js';

// One attempt per job: a job that waits for the lock must not be failed for it. Two workers.
const stack = useStack('restore', {
  env: { JOB_ATTEMPTS: '1', RESTORE_BUSY_TIMEOUT: '1000', LOCK_TTL: '2000', MAX_BACKUPS: '50' },
  sizeMb: 6,
  workers: 2,
});
let box: Sandbox;
let producer: RunningProducer;
let catalog: Catalog;
const log = testLogger({ logLevel: 'warn' }, 'test');

beforeAll(() => {
  ({ box, producer, catalog } = stack);
});

async function backupNow(): Promise<{ id: number; filePath: string; checksum: string }> {
  const res = await request(producer.server).post('/api/backups').set(auth);
  expect(res.status).toBe(201);
  return res.body.backup;
}

const verify = (id: number, body: object = {}) => request(producer.server).post(`/api/backups/${id}/verify`).set(auth).send(body);
const restore = (id: number) => request(producer.server).post(`/api/backups/${id}/restore`).set(auth);
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Damages a backup "before it was checksummed": the file changes and the catalog agrees with it. */
function damageAndRecord(id: number, file: string, damage: (f: string) => void): void {
  damage(file);
  withCatalogDb(catalog.file, (db) => db.prepare('UPDATE backup_log SET checksum = ? WHERE id = ?').run(sha256(file), id));
}

function addWorkflow(name: string): void {
  const db = new Database(box.config.databasePath);
  db.pragma('busy_timeout = 10000');
  db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, ?, ?)').run(name, '{}', new Date().toISOString());
  db.close();
}

const hasWorkflow = (name: string) =>
  query<{ n: number }>(box.config.databasePath, 'SELECT count(*) AS n FROM workflows WHERE name = ?', name).n === 1;

describe('verify', () => {
  it('passes a good backup, full and quick, and shows the outcome on the backup', async () => {
    const backup = await backupNow();
    const full = await verify(backup.id);
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({ success: true, backupId: backup.id, valid: true, message: 'Backup is valid' });
    expect(full.body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ['file_exists', true],
      ['checksum', true],
      ['opens_as_sqlite', true],
      ['integrity', true],
    ]);
    const quick = await verify(backup.id, { mode: 'quick' });
    expect(quick.body).toMatchObject({ valid: true, mode: 'quick' });
    const shown = await request(producer.server).get(`/api/backups/${backup.id}`).set(auth);
    expect(shown.body.backup.lastVerification).toMatchObject({ valid: true, mode: 'quick', message: 'Backup is valid' });
  });

  it('names the failing check for each kind of damage', async () => {
    const flipped = await backupNow();
    const fd = fs.openSync(flipped.filePath, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, 5000);
    fs.writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, 5000);
    fs.closeSync(fd);
    let res = await verify(flipped.id);
    expect(res.body).toMatchObject({ valid: false, message: 'checksum mismatch' });
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'checksum', ok: false });

    const truncated = await backupNow();
    fs.truncateSync(truncated.filePath, 4096);
    res = await verify(truncated.id);
    expect(res.body).toMatchObject({ valid: false, message: 'checksum mismatch' });
    // The same truncation recorded as if it had happened before the checksum was taken.
    damageAndRecord(truncated.id, truncated.filePath, () => undefined);
    res = await verify(truncated.id);
    expect(res.body.valid).toBe(false);
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'opens_as_sqlite', ok: false });
    expect(res.body.message).toMatch(/^cannot open the database: .*malformed/);

    const replaced = await backupNow();
    damageAndRecord(replaced.id, replaced.filePath, (f) => fs.writeFileSync(f, 'this is not a database\n'.repeat(500)));
    res = await verify(replaced.id);
    expect(res.body).toMatchObject({ valid: false, message: 'not a SQLite database' });
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'opens_as_sqlite', ok: false });

    const pageDamaged = await backupNow();
    damageAndRecord(pageDamaged.id, pageDamaged.filePath, (f) => {
      const pageSize = 4096;
      const fd2 = fs.openSync(f, 'r+');
      fs.writeSync(fd2, Buffer.alloc(64, 0xee), 0, 64, pageSize * 3); // a b-tree page header
      fs.closeSync(fd2);
    });
    res = await verify(pageDamaged.id);
    expect(res.body.valid).toBe(false);
    expect(res.body.checks.at(-1)).toMatchObject({ name: 'integrity', ok: false });

    const missing = await backupNow();
    fs.rmSync(missing.filePath);
    res = await verify(missing.id);
    expect(res.body).toMatchObject({ valid: false, message: 'file missing' });
    expect(res.body.checks).toEqual([expect.objectContaining({ name: 'file_exists', ok: false })]);

    const shown = await request(producer.server).get(`/api/backups/${missing.id}`).set(auth);
    expect(shown.body.backup.lastVerification).toMatchObject({ valid: false, message: 'file missing' });
  });
});

describe('restore', () => {
  it('restores under a process that keeps reading and writing, which sees the restored rows without errors', async () => {
    const backup = await backupNow();
    addWorkflow('written-after-the-backup');
    const writer = await startApp(box.config.databasePath, { busyTimeoutMs: 60_000, run: { work: 'transfers', everyMs: 3 } });
    await new Promise((r) => setTimeout(r, 300));

    const res = await restore(backup.id);
    expect(res.status).toBe(200);
    expect(res.body.restore).toMatchObject({ backupId: backup.id, status: 'completed', errorMessage: null });
    await new Promise((r) => setTimeout(r, 300));
    // What this long-lived connection sees now, after the restore underneath it.
    const workflows = (await writer.send({ op: 'count', table: 'workflows' })).n;
    const seen = await writer.stop();
    expect(seen.errors).toBe(0);
    expect(seen.commits).toBeGreaterThan(10);

    // The writer's own connection, open all along, sees the restored table.
    const restoredCount = query<{ n: number }>(backup.filePath, 'SELECT count(*) AS n FROM workflows').n;
    expect(workflows).toBe(restoredCount);
    expect(hasWorkflow('written-after-the-backup')).toBe(false);
    expect(integrity(box.config.databasePath)).toBe('ok');
    expect(balanceSum(box.config.databasePath)).toBe(ACCOUNTS * INITIAL_BALANCE);
    expect(query<{ journal_mode: string }>(box.config.databasePath, 'PRAGMA journal_mode').journal_mode).toBe('wal');

    // The safety backup holds the database as it was just before: with the later row.
    const safety = catalog.getBackup(res.body.restore.safetyBackupId)!;
    expect(safety).toMatchObject({ backup_type: 'pre-migration', status: 'completed' });
    expect(query<{ n: number }>(safety.file_path, "SELECT count(*) AS n FROM workflows WHERE name = 'written-after-the-backup'").n).toBe(1);
  });

  it('refuses a corrupt backup and leaves the live database untouched', async () => {
    const backup = await backupNow();
    addWorkflow('must-survive');
    damageAndRecord(backup.id, backup.filePath, (f) => {
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, Buffer.alloc(64, 0xee), 0, 64, 4096 * 3);
      fs.closeSync(fd);
    });
    const backupsBefore = catalog.countBackups();
    const res = await restore(backup.id);
    expect(res.status).toBe(422);
    expect(res.body.success).toBe(false);
    expect(res.body.error.message).toMatch(/failed verification: integrity_check failed/);
    expect(res.body.restore.status).toBe('failed');
    expect(hasWorkflow('must-survive')).toBe(true);
    expect(integrity(box.config.databasePath)).toBe('ok');
    // Refused before the safety backup: nothing new in the catalog.
    expect(catalog.countBackups()).toBe(backupsBefore);
  });

  it('runs integrity_check on a backup unless these very bytes passed it before, and so still refuses damage only it finds', async () => {
    const backup = await backupNow();
    const checkedBy = () => catalog.lastVerification(backup.id)!;
    // Never fully checked: the restore runs integrity_check.
    addWorkflow('before-the-first-restore');
    expect((await restore(backup.id)).status).toBe(200);
    expect(checkedBy()).toMatchObject({ mode: 'full', valid: 1 });
    // The same bytes again: their checksum alone, and the restore is as good.
    addWorkflow('before-the-second-restore');
    const second = await restore(backup.id);
    expect(second.status).toBe(200);
    expect(checkedBy()).toMatchObject({ mode: 'quick', valid: 1 });
    // The checksum proves they are the bytes that passed: no SQLite check runs again, and the record says so.
    expect(JSON.parse(checkedBy().checks)).toContainEqual({ name: 'integrity', ok: true, detail: expect.stringMatching(/not run again/) });
    expect(hasWorkflow('before-the-second-restore')).toBe(false);
    expect(integrity(box.config.databasePath)).toBe('ok');

    // Index entries that no longer match their rows: quick_check does not look, integrity_check
    // does. The catalog's checksum is changed to match, so only the earlier check's record of
    // which bytes it passed tells them apart.
    damageAndRecord(backup.id, backup.filePath, (f) => {
      const db = new Database(f, { readonly: true });
      const { pageno, pgsize } = db
        .prepare("SELECT pageno, pgsize FROM dbstat WHERE name = 'workflows_name' AND pagetype = 'leaf' LIMIT 1")
        .get() as { pageno: number; pgsize: number };
      db.close();
      const fd = fs.openSync(f, 'r+');
      const page = Buffer.alloc(pgsize);
      fs.readSync(fd, page, 0, pgsize, (pageno - 1) * pgsize);
      // Cells sit at the end of the page; the gap before them can hold stale bytes.
      const at = page.lastIndexOf('workflow-');
      expect(at).toBeGreaterThan(0);
      fs.writeSync(fd, Buffer.from('x'), 0, 1, (pageno - 1) * pgsize + at + 7); // workflow- → workflox-
      fs.closeSync(fd);
    });
    expect(query<{ quick_check: string }>(backup.filePath, 'PRAGMA quick_check').quick_check).toBe('ok');
    expect(integrity(backup.filePath)).not.toBe('ok');
    addWorkflow('must-survive-the-refusal');
    const refused = await restore(backup.id);
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toMatch(/failed verification: integrity_check failed/);
    expect(checkedBy()).toMatchObject({ mode: 'full', valid: 0 });
    expect(hasWorkflow('must-survive-the-refusal')).toBe(true);
  });

  it('leaves the database as it was when the live database stays busy past the bound', async () => {
    const backup = await backupNow();
    addWorkflow('kept-when-restore-fails');
    const blocker = new Database(box.config.databasePath);
    blocker.exec('BEGIN IMMEDIATE');
    let res;
    try {
      res = await restore(backup.id);
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/busy/);
    expect(res.body.restore).toMatchObject({ status: 'failed' });
    expect(res.body.restore.safetyBackupId).toEqual(expect.any(Number));
    expect(hasWorkflow('kept-when-restore-fails')).toBe(true);
    expect(integrity(box.config.databasePath)).toBe('ok');
  });

  it('answers 404 for an unknown backup and 400 for one that is not completed', async () => {
    expect((await restore(999_999)).status).toBe(404);
    const failedId = catalog.beginBackup('manual', `${box.config.backupDir}/never.db`, null, 'none');
    catalog.failBackup(failedId, 'test');
    const res = await restore(failedId);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('backup_not_restorable');
  });

  it('does not restore twice, nor take a second safety backup, when the same job runs again', async () => {
    const backup = await backupNow();
    const ctx = { config: box.config, catalog, log };
    const redis = workerRedis(box.config.redisUrl);
    const lock = await waitUntil('the database lock', () =>
      new DatabaseLock(redis, box.config.queuePrefix, catalog, box.config.lockTtl).tryAcquire('test'),
    );
    try {
      const first = await restoreBackup(ctx, { backupId: backup.id, jobId: 'rerun-job', lock });
      addWorkflow('written-after-the-restore');
      const second = await restoreBackup(ctx, { backupId: backup.id, jobId: 'rerun-job', lock });
      expect(second).toEqual(first);
      expect(hasWorkflow('written-after-the-restore')).toBe(true);
      const safetyRows = catalog.listBackups({ limit: 1000 }).filter((b) => b.job_id === safetyJobId('rerun-job'));
      expect(safetyRows).toHaveLength(1);
    } finally {
      await lock.release();
      redis.disconnect();
    }
  });
});

describe('the database lock', () => {
  it('never lets a backup and a restore on two workers overlap, and fails neither for it', async () => {
    const backup = await backupNow();
    const [b, r] = await Promise.all([
      request(producer.server).post('/api/backups').set(auth).send({ type: 'pre-migration' }),
      restore(backup.id),
    ]);
    expect(b.status).toBe(201);
    expect(r.status).toBe(200);
    const backupSpan = [Date.parse(b.body.backup.startedAt), Date.parse(b.body.backup.completedAt)] as const;
    const restoreSpan = [Date.parse(r.body.restore.startedAt), Date.parse(r.body.restore.completedAt)] as const;
    const overlap = backupSpan[0] < restoreSpan[1] && restoreSpan[0] < backupSpan[1];
    expect(overlap).toBe(false);
  });

  it('expires when its holder is killed, and the waiting job then proceeds', async () => {
    const holder = spawnTs('test/helpers/hold-lock.ts', box.env);
    await holder.waitFor(/held fence=\d+/);
    const queued = await request(producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async');
    expect(queued.status).toBe(202);
    // The job is parked while the lock is held…
    await new Promise((r) => setTimeout(r, 800));
    const waiting = await request(producer.server).get(queued.body.statusUrl).set(auth);
    expect(['delayed', 'waiting', 'active']).toContain(waiting.body.job.state);
    expect(catalog.getBackupByJob(queued.body.jobId)).toBeUndefined();
    await holder.kill();
    // …and runs once the dead holder's lock has expired (LOCK_TTL is 2 s here).
    const done = await waitUntil(
      'the backup to complete after the lock expired',
      async () => {
        const r = await request(producer.server).get(queued.body.statusUrl).set(auth);
        return r.body.job.state === 'completed' ? r.body.job : null;
      },
      30_000,
    );
    expect(done.result.status).toBe('completed');
    expect(done.attemptsMade).toBe(1);
  });

  it('fences off a holder whose lock was taken over', async () => {
    const redis = workerRedis(box.config.redisUrl);
    const lock = new DatabaseLock(redis, box.config.queuePrefix, catalog, 60_000);
    const stale = await waitUntil('the lock', () => lock.tryAcquire('stale'));
    await stale.assertHeld();
    await redis.del(lock.key); // as if its TTL ran out while the holder was paused
    const fresh = (await lock.tryAcquire('fresh'))!;
    expect(fresh.fence).toBeGreaterThan(stale.fence);
    await expect(stale.assertHeld()).rejects.toThrow(/held by someone else|newer lock grant/);
    await fresh.assertHeld();
    await stale.release(); // compare-and-delete: must not release the new holder's lock
    expect(await lock.holder()).toBe('fresh');
    await fresh.release();
    expect(await lock.holder()).toBeNull();
    redis.disconnect();
  });
});
