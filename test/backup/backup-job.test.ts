import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { startApp } from '../helpers/fake-app.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, integrity } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

const stack = useStack('backup', { env: { MAX_BACKUPS: '3' }, sizeMb: 8 });

const backupFiles = () =>
  fs
    .readdirSync(stack.box.config.backupDir)
    .filter((n) => n.startsWith('workstation-backup-'))
    .sort();

describe('backup job', () => {
  it('takes a consistent copy while another process keeps writing', async () => {
    const writer = await startApp(stack.box.config.databasePath, { busyTimeoutMs: 60_000, run: { work: 'transfers', everyMs: 2 } });
    await new Promise((r) => setTimeout(r, 300));

    const res = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    expect(res.body.backup.status).toBe('completed');

    const stats = await writer.stop();
    expect(stats.commits).toBeGreaterThan(20);
    expect(stats.errors).toBe(0);

    const file = res.body.backup.filePath as string;
    expect(path.dirname(file)).toBe(stack.box.config.backupDir);
    expect(path.basename(file)).toMatch(/^workstation-backup-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?\.db$/);
    expect(integrity(file)).toBe('ok');
    expect(balanceSum(file)).toBe(ACCOUNTS * INITIAL_BALANCE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(stack.box.config.backupDir).mode & 0o777).toBe(0o700);
    // The catalog holds the file's real size and SHA-256.
    const sha = execFileSync('sha256sum', [file]).toString().split(' ')[0];
    const row = stack.catalog.getBackup(res.body.backup.id)!;
    expect(row).toMatchObject({ status: 'completed', checksum: sha, file_size_bytes: fs.statSync(file).size, backup_type: 'manual' });
    // A self-contained file: no -wal/-shm companions are needed to read it.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
  });

  it('never gives two backups in the same second the same file', async () => {
    const results = await Promise.all([
      request(stack.producer.server).post('/api/backups').set(auth),
      request(stack.producer.server).post('/api/backups').set(auth).send({ type: 'pre-migration' }),
    ]);
    for (const r of results) expect(r.status).toBe(201);
    const names = results.map((r) => r.body.backup.fileName as string);
    expect(new Set(names).size).toBe(2);
    expect(results[1]!.body.backup.backupType).toBe('pre-migration');
  });

  it('keeps only MAX_BACKUPS completed backups, files and rows', async () => {
    for (let i = 0; i < 3; i++) expect((await request(stack.producer.server).post('/api/backups').set(auth)).status).toBe(201);
    const completed = stack.catalog.completedBackups();
    // The safety backup of the test before is kept by its own rule (MAX_SAFETY_BACKUPS) and does
    // not count against MAX_BACKUPS.
    const regular = completed.filter((b) => b.backup_type !== 'pre-migration');
    expect(regular).toHaveLength(3);
    expect(completed.filter((b) => b.backup_type === 'pre-migration')).toHaveLength(1);
    expect(backupFiles()).toEqual(completed.map((b) => path.basename(b.file_path)).sort());
    // The newest three survive.
    const ids = regular.map((b) => b.id);
    expect(Math.max(...ids)).toBe(stack.catalog.listBackups({ limit: 1 })[0]!.id);
  });

  it('joins a second "backup now" to the backup already waiting instead of queueing another', async () => {
    const first = await request(stack.producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async');
    const second = await request(stack.producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async');
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.jobId).toBe(first.body.jobId);
    const job = await waitUntil('the queued backup to finish', async () => {
      const r = await request(stack.producer.server).get(first.body.statusUrl).set(auth);
      return r.body.job?.state === 'completed' ? r.body.job : null;
    });
    expect(job.result.status).toBe('completed');
    expect(job.progress).toBe(100);
  });

  it('records a backup of a missing database as failed, with the reason, and leaves no file', async () => {
    const before = backupFiles();
    fs.renameSync(stack.box.config.databasePath, `${stack.box.config.databasePath}.away`);
    try {
      const res = await request(stack.producer.server).post('/api/backups').set(auth);
      expect(res.status).toBe(500);
      expect(res.body.success).toBe(false);
      expect(res.body.error.message).toMatch(/does not exist/);
      expect(res.body.backup.status).toBe('failed');
      const row = stack.catalog.getBackup(res.body.backup.id)!;
      expect(row.status).toBe('failed');
      expect(row.error_message).toMatch(/database file .* does not exist/);
      expect(backupFiles()).toEqual(before);
      expect(fs.readdirSync(stack.box.config.backupDir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    } finally {
      fs.renameSync(`${stack.box.config.databasePath}.away`, stack.box.config.databasePath);
    }
  });

  it('records a backup into a directory it cannot write as failed, and leaves no file', async () => {
    const before = backupFiles();
    execFileSync('chattr', ['+i', stack.box.config.backupDir]);
    try {
      const res = await request(stack.producer.server).post('/api/backups').set(auth);
      expect(res.status).toBe(500);
      expect(res.body.error.message).toMatch(/not writable|cannot write/);
      expect(stack.catalog.getBackup(res.body.backup.id)!.error_message).toMatch(/not writable|cannot write/);
    } finally {
      execFileSync('chattr', ['-i', stack.box.config.backupDir]);
    }
    expect(backupFiles()).toEqual(before);
    expect(fs.readdirSync(stack.box.config.backupDir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const stats = await request(stack.producer.server).get('/api/backups/stats').set(auth);
    expect(stats.body.statistics.failedBackups).toBe(2);
  });
});

describe('automatic backups', () => {
  it('fire on the schedule set through the API, and stop when it is turned off', async () => {
    const put = await request(stack.producer.server)
      .put('/api/backups/config')
      .set(auth)
      .send({ autoBackupEnabled: true, autoBackupInterval: 1500 });
    expect(put.status).toBe(200);
    expect(put.body.config).toMatchObject({ autoBackupEnabled: true, autoBackupInterval: 1500 });
    expect(put.body.config.nextScheduledBackup).toEqual(expect.any(String));

    const scheduled = () =>
      stack.catalog.listBackups({ limit: 100 }).filter((b) => b.backup_type === 'scheduled' && b.status === 'completed');
    await waitUntil('two scheduled backups', () => scheduled().length >= 2, 30_000);
    // Exactly one scheduler, however many times the config is applied.
    await request(stack.producer.server).put('/api/backups/config').set(auth).send({ autoBackupEnabled: true });
    expect(await stack.producer.deps.queues.backup.getJobSchedulersCount()).toBe(1);

    const off = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ autoBackupEnabled: false });
    expect(off.body.config.autoBackupEnabled).toBe(false);
    expect(await stack.producer.deps.queues.backup.getJobSchedulersCount()).toBe(0);
    // A scheduled job already taken off the schedule may still be running: let it finish.
    await waitUntil('in-flight scheduled backups to finish', async () => {
      const counts = await stack.producer.deps.queues.backup.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).every((n) => n === 0);
    });
    const count = stack.catalog.countBackups();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(stack.catalog.countBackups()).toBe(count);

    // The stored config outlives the producer.
    await stack.producer.close();
    stack.producer = await startTestProducer(stack.box.config);
    const get = await request(stack.producer.server).get('/api/backups/config').set(auth);
    expect(get.body.config).toMatchObject({ autoBackupEnabled: false, autoBackupInterval: 1500 });
  });
});
