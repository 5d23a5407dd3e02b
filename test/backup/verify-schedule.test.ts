import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { ConfigError } from '../../src/shared/domain/errors.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { useStack } from '../helpers/stack.js';

const stack = useStack('verify-schedule', {
  env: (dir) => ({ VERIFY_AFTER_BACKUP: 'true', LOG_FILE: path.join(dir, 'logs', 'combined.log') }),
});

const verifications = (backupId: number) =>
  withCatalogDb(stack.catalog.file, (db) => db.prepare('SELECT * FROM verification WHERE backup_id = ? ORDER BY id').all(backupId)) as {
    mode: string;
    valid: number;
    verified_at: string;
  }[];

describe('verification after each backup (VERIFY_AFTER_BACKUP)', () => {
  it('shows in the config and verifies every new backup in full', async () => {
    const config = await request(stack.producer.server).get('/api/backups/config').set(auth);
    expect(config.body.config).toMatchObject({ verifyAfterBackup: true, verifySchedule: 'off', nextScheduledVerification: null });

    const res = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    const id = res.body.backup.id as number;
    const rows = await waitUntil('the follow-up verification', () => (verifications(id).length ? verifications(id) : null));
    expect(rows).toEqual([expect.objectContaining({ mode: 'full', valid: 1 })]);
    const detail = await request(stack.producer.server).get(`/api/backups/${id}`).set(auth);
    expect(detail.body.backup.lastVerification).toMatchObject({ mode: 'full', valid: true });
  });
});

describe('scheduled verification (VERIFY_SCHEDULE)', () => {
  it('verifies every kept backup on the schedule set through the API, and stops when turned off', async () => {
    const off = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifyAfterBackup: false });
    expect(off.body.config.verifyAfterBackup).toBe(false);
    const second = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(second.status).toBe(201);
    // A follow-up is queued before the backup job completes, so none is coming.
    expect(await stack.producer.deps.queues.verify.getJobCounts('waiting', 'active', 'delayed')).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
    });
    expect(verifications(second.body.backup.id)).toEqual([]);

    const since = new Date().toISOString();
    // The sweep may not run more than once a minute; a milliseconds schedule fires at once.
    const put = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: '60000' });
    expect(put.status).toBe(200);
    expect(put.body.config).toMatchObject({ verifySchedule: '60000', nextScheduledVerification: expect.any(String) });

    const kept = stack.catalog.completedBackups();
    expect(kept).toHaveLength(2);
    await waitUntil(
      'a scheduled verification of every kept backup',
      () => kept.every((b) => verifications(b.id).some((v) => v.verified_at >= since && v.mode === 'full' && v.valid === 1)),
      30_000,
    );

    const stop = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: 'off' });
    expect(stop.body.config).toMatchObject({ verifySchedule: 'off', nextScheduledVerification: null });
    expect(await stack.producer.deps.queues.verify.getJobSchedulersCount()).toBe(0);

    // Milliseconds work too, and the setting outlives the producer.
    await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: '604800000' });
    await stack.producer.close();
    stack.producer = await startTestProducer(stack.box.config);
    const get = await request(stack.producer.server).get('/api/backups/config').set(auth);
    expect(get.body.config).toMatchObject({ verifySchedule: '604800000', verifyAfterBackup: false });
    expect(await stack.producer.deps.queues.verify.getJobSchedulersCount()).toBe(1);
  });

  it('rejects a schedule that is not off, milliseconds or a cron pattern, with the one error shape', async () => {
    for (const bad of ['every tuesday', '61 * * * *', '500', 42]) {
      const res = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: bad });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        success: false,
        error: { code: 'invalid_body', message: expect.stringMatching(/^verifySchedule: /) },
      });
    }
    expect(() => parseConfig({ VERIFY_SCHEDULE: 'weekly' })).toThrow(ConfigError);
    expect(() => parseConfig({ VERIFY_SCHEDULE: 'weekly' })).toThrow(
      /^Invalid VERIFY_SCHEDULE="weekly": expected off, milliseconds, or a cron pattern/,
    );
    expect(parseConfig({ VERIFY_SCHEDULE: '0 3 * * 0' }).verifySchedule).toBe('0 3 * * 0');
    expect(() => parseConfig({ ALERT_WEBHOOK_URL: 'ftp://x' })).toThrow(/^Invalid ALERT_WEBHOOK_URL=\(hidden\)/);
  });
});

describe('LOG_FILE', () => {
  it('receives the same JSON lines as stdout', () => {
    const lines = fs
      .readFileSync(stack.box.config.logFile!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { service: string; msg: string });
    expect(lines.some((l) => l.service === 'worker' && l.msg === 'worker ready')).toBe(true);
    const completed = lines.find((l) => l.service === 'worker' && l.msg === 'backup completed') as Record<string, unknown> | undefined;
    // Which copy the backup made and where its time went, for whoever reads the log.
    expect(completed).toMatchObject({
      copy: 'file',
      copyMs: expect.any(Number),
      checkMs: expect.any(Number),
      publishMs: expect.any(Number),
    });
    expect(stack.worker.output()).toContain('"msg":"backup completed"');
  });
});
