import fs from 'node:fs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { query, writeMarker } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

const stack = useStack('restores', { env: { JOB_ATTEMPTS: '1', MAX_BACKUPS: '50' } });

const marker = () => query<{ v: string }>(stack.box.config.databasePath, 'SELECT v FROM marker').v;

async function backupWithMarker(value: string): Promise<{ id: number; filePath: string }> {
  writeMarker(stack.box.config.databasePath, value);
  const res = await request(stack.producer.server).post('/api/backups').set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.backup;
}

/** Damages a backup file on disk as a failing disk would: its bytes no longer match its checksum. */
function flipBytes(file: string): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, 8192);
  fs.closeSync(fd);
}

const restoreLatest = (body: unknown, headers: Record<string, string> = {}) =>
  request(stack.producer.server)
    .post('/api/restores')
    .set(auth)
    .set(headers)
    .send(body as object);

const pendingRestores = () => stack.producer.deps.queues.restore.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');

describe('POST /api/restores {"to": "latest-valid"}', () => {
  it('refuses a body without "to" or with another target, in the one error shape, and queues nothing', async () => {
    const before = await pendingRestores();
    for (const body of [undefined, {}, { to: 'yesterday' }, { to: 'latest-valid', backupId: 1 }, { to: ['latest-valid'] }]) {
      const res = await restoreLatest(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toEqual({ success: false, error: { code: 'invalid_body', message: expect.any(String) } });
    }
    const noTo = await restoreLatest({});
    expect(noTo.body.error.message).toMatch(/latest-valid/);
    expect(await pendingRestores()).toEqual(before);
  });

  it('passes over the newest backup, damaged on disk, and restores the one before it', async () => {
    await backupWithMarker('first');
    const second = await backupWithMarker('second');
    const third = await backupWithMarker('third');
    flipBytes(third.filePath);
    writeMarker(stack.box.config.databasePath, 'live');

    const res = await restoreLatest({ to: 'latest-valid' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      success: true,
      message: 'Backup restored successfully; no restart needed',
      restore: { backupId: second.id, status: 'completed', safetyBackupId: expect.any(Number) },
      skipped: [{ backupId: third.id, reason: expect.stringMatching(/checksum mismatch/) }],
    });
    expect(marker()).toBe('second');

    // The catalog keeps why the newest was passed over, and the database as it was.
    expect(stack.catalog.lastVerification(third.id)).toMatchObject({ valid: 0 });
    expect(stack.catalog.lastVerification(second.id)).toMatchObject({ valid: 1 });
    const safety = stack.catalog.getBackup(res.body.restore.safetyBackupId as number)!;
    expect(safety).toMatchObject({ backup_type: 'pre-migration', status: 'completed' });
    expect(query<{ v: string }>(safety.file_path, 'SELECT v FROM marker').v).toBe('live');
  });

  it('answers 202 with a statusUrl under Prefer: respond-async, and the job ends with the restore', async () => {
    writeMarker(stack.box.config.databasePath, 'live again');
    const res = await restoreLatest({ to: 'latest-valid' }, { Prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ success: true, jobId: expect.any(String), statusUrl: `/api/jobs/${res.body.jobId}` });
    const job = await waitUntil('the restore job to finish', async () => {
      const r = await request(stack.producer.server).get(res.body.statusUrl).set(auth);
      return ['completed', 'failed'].includes(r.body.job?.state) ? r.body.job : undefined;
    });
    expect(job.state).toBe('completed');
    // The newest valid backup now is the safety backup the previous restore took (marker 'live').
    expect(marker()).toBe('live');
  });

  it('fails with 422 and a clear reason when no backup passes verification, leaving the database as it is', async () => {
    for (const b of stack.catalog.completedBackups()) flipBytes(b.file_path);
    writeMarker(stack.box.config.databasePath, 'untouched');

    const res = await restoreLatest({ to: 'latest-valid' });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      success: false,
      error: { code: 'restore_failed', message: expect.stringMatching(/^no backup passed verification \(\d+ tried\)/) },
    });
    expect(res.body.restore).toBeUndefined();
    expect(marker()).toBe('untouched');
  });
});
