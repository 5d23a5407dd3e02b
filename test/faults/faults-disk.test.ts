/**
 * The backup volume fills up (a small tmpfs mounted as BACKUP_DIR, catalog included), and the
 * catalog is locked by another process for a while.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { backupFiles, catalogMatchesFiles, inspectQueues, sha256, tempFiles } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';

/** Adds about `mb` MB of rows to the live database. */
function grow(file: string, mb: number): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 10000');
    const insert = db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, randomblob(4000), ?)');
    db.transaction(() => {
      for (let i = 0; i < mb * 256; i++) insert.run(`bulk-${i}`, new Date().toISOString());
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

describe('the backup volume fills up during a backup', () => {
  let mounted = false;
  const stack = useStack('disk', {
    env: { MAX_BACKUPS: '2', JOB_ATTEMPTS: '2', JOB_BACKOFF: '100' },
    prepare(_file, box) {
      fs.mkdirSync(box.config.backupDir, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', box.config.backupDir]);
      mounted = true;
    },
    // After everything holding a file on the tmpfs has stopped, or it cannot be unmounted.
    teardown(box) {
      if (mounted) execFileSync('umount', [box.config.backupDir]);
    },
  });

  it('fails the backup with "no space left", leaves nothing partial, and keeps every good backup', async () => {
    const { box, producer, catalog } = stack;
    const good = [];
    for (let i = 0; i < 2; i++) {
      const res = await request(producer.server).post('/api/backups').set(auth);
      expect(res.status).toBe(201);
      good.push(res.body.backup as { id: number; filePath: string; checksum: string });
    }
    const filesBefore = backupFiles(box.config.backupDir);
    expect(filesBefore).toHaveLength(2);

    // The next copy needs more room than the volume has left.
    grow(box.config.databasePath, 7);
    const res = await request(producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ success: false, error: { code: 'backup_failed', message: expect.stringMatching(/no space left/) } });
    const row = catalog.getBackup(res.body.backup.id)!;
    expect(row.status).toBe('failed');
    expect(row.error_message).toMatch(/no space left in /);
    expect(row.file_size_bytes).toBeNull();
    // A full disk is worth retrying (space may be freed): every attempt was made, and each failed the same way.
    const q = inspectQueues(box.config);
    try {
      const job = (await q.backup.getJob(row.job_id!))!;
      expect(job.attemptsMade).toBe(2);
    } finally {
      await q.close();
    }

    // Nothing partial: no temp file, no journal, no new backup file; the old ones are byte for byte the same.
    expect(tempFiles(box.config.backupDir)).toEqual([]);
    expect(fs.readdirSync(box.config.backupDir).filter((n) => /-journal$|\.tmp/.test(n))).toEqual([]);
    expect(backupFiles(box.config.backupDir)).toEqual(filesBefore);
    for (const b of good) expect(sha256(b.filePath)).toBe(b.checksum);
    // Retention did not delete a good backup to make room.
    expect(
      catalog
        .completedBackups()
        .map((b) => b.id)
        .sort(),
    ).toEqual(good.map((b) => b.id).sort());
    for (const b of good) {
      const verify = await request(producer.server).post(`/api/backups/${b.id}/verify`).set(auth);
      expect(verify.body).toMatchObject({ success: true, valid: true });
    }
    catalogMatchesFiles(box.config.backupDir, catalog.completedBackups());

    // Once there is room again, backups carry on and retention keeps MAX_BACKUPS as usual.
    execFileSync('mount', ['-o', 'remount,size=64m', box.config.backupDir]);
    const after = await request(producer.server).post('/api/backups').set(auth);
    expect(after.status).toBe(201);
    expect(catalog.completedBackups()).toHaveLength(2);
    catalogMatchesFiles(box.config.backupDir, catalog.completedBackups());
  }, 120_000);
});

describe('the catalog is locked by another process for a while', () => {
  // One attempt per job: a job that did not wait for the lock would fail outright, not be retried into success.
  const stack = useStack('catalog-lock', { env: { JOB_ATTEMPTS: '1', CATALOG_BUSY_TIMEOUT: '20000' } });

  it('makes backup and verify jobs wait (busy_timeout), then succeed', async () => {
    const { box, producer } = stack;
    const first = await request(producer.server).post('/api/backups').set(auth);
    expect(first.status).toBe(201);

    const holder = new Database(box.config.catalogPath);
    const q = inspectQueues(box.config);
    try {
      holder.exec('BEGIN IMMEDIATE'); // the write lock, as a long-running writer holds it
      const backup = request(producer.server)
        .post('/api/backups')
        .set(auth)
        .then((r) => r);
      const verify = request(producer.server)
        .post(`/api/backups/${first.body.backup.id}/verify`)
        .set(auth)
        .then((r) => r);
      await waitUntil('the backup job to be running', async () => (await q.backup.getActiveCount()) === 1);
      await new Promise((r) => setTimeout(r, 2_000));
      // Still waiting: no new row could be written while the lock is held.
      expect((holder.prepare('SELECT count(*) AS n FROM backup_log').get() as { n: number }).n).toBe(1);
      expect(await q.backup.getActiveCount()).toBe(1);
      holder.exec('COMMIT');

      const [b, v] = await Promise.all([backup, verify]);
      expect(b.status).toBe(201);
      expect(b.body.backup.status).toBe('completed');
      expect(v.status).toBe(200);
      expect(v.body).toMatchObject({ success: true, valid: true });
      const { job_id: jobId } = holder.prepare('SELECT job_id FROM backup_detail WHERE backup_id = ?').get(b.body.backup.id) as {
        job_id: string;
      };
      const job = (await q.backup.getJob(jobId))!;
      expect(await job.getState()).toBe('completed');
      expect(job.failedReason).toBeFalsy();
      expect(job.stacktrace ?? []).toEqual([]);
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
      await q.close();
    }
  }, 120_000);
});
