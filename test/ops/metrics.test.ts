import fs from 'node:fs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { parseExposition, type Exposition } from '../helpers/prometheus.js';
import { DatabaseLock } from '../../src/shared/locking/lock.js';
import { producerRedis, waitForRedis } from '../../src/shared/runtime/redis.js';
import { useStack } from '../helpers/stack.js';

const METRICS_TOKEN = 'metrics-only-token-0123456789';

const stack = useStack('metrics', { env: { METRICS_TOKEN, HEARTBEAT_INTERVAL: '200' } });

async function scrape(): Promise<Exposition> {
  const res = await request(stack.producer.server).get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(res.text);
}

const P = 'workstation_backup_';

describe('GET /metrics', () => {
  it('needs the metrics token or the API token', async () => {
    const none = await request(stack.producer.server).get('/metrics');
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ success: false, error: { code: 'unauthorized', message: 'missing bearer token' } });
    const wrong = await request(stack.producer.server).get('/metrics').set('Authorization', 'Bearer not-the-token-at-all-0000');
    expect(wrong.status).toBe(401);
    expect((await request(stack.producer.server).get('/metrics').set(auth)).status).toBe(200);
    // The metrics token opens /metrics only, not the API.
    expect((await request(stack.producer.server).get('/api/backups').set('Authorization', `Bearer ${METRICS_TOKEN}`)).status).toBe(401);
  });

  it('parses as Prometheus text and its counters move after a backup', async () => {
    const before = await waitUntil('the worker to report', async () => {
      const f = await scrape();
      return f.value(`${P}workers_alive`) === 1 ? f : null;
    });
    expect(before.value(`${P}backups_total`, { type: 'manual', status: 'completed' })).toBe(0);
    expect(before.value(`${P}last_success_timestamp_seconds`)).toBe(0);

    const res = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    const row = stack.catalog.getBackup(res.body.backup.id)!;

    // Worker counters arrive with its next heartbeat.
    const after = await waitUntil('the backup to be counted', async () => {
      const f = await scrape();
      return f.value(`${P}backups_total`, { type: 'manual', status: 'completed' }) === 1 ? f : null;
    });
    expect(after.value(`${P}job_duration_seconds_count`, { queue: 'backup', outcome: 'completed' })).toBe(1);
    expect(after.value(`${P}last_backup_size_bytes`)).toBe(fs.statSync(row.file_path).size);
    expect(after.value(`${P}last_success_timestamp_seconds`)).toBeCloseTo(Date.parse(row.completed_at!) / 1_000, 3);
    expect(after.value(`${P}catalog_backups`, { type: 'manual', status: 'completed' })).toBe(1);
    expect(after.value(`${P}queue_jobs`, { queue: 'backup', state: 'completed' })).toBe(1);
    expect(after.value(`${P}queue_jobs`, { queue: 'backup', state: 'waiting' })).toBe(0);
    expect(after.value(`${P}redis_up`)).toBe(1);
    expect(after.value(`${P}backup_dir_free_bytes`)).toBeGreaterThan(0);
  });

  it('counts failed backups, jobs that failed for good, and waits for the database lock', async () => {
    fs.renameSync(stack.box.config.databasePath, `${stack.box.config.databasePath}.away`);
    try {
      expect((await request(stack.producer.server).post('/api/backups').set(auth)).status).toBe(500);
    } finally {
      fs.renameSync(`${stack.box.config.databasePath}.away`, stack.box.config.databasePath);
    }
    const failed = await waitUntil('the failure to be counted', async () => {
      const f = await scrape();
      return f.value(`${P}jobs_failed_total`, { queue: 'backup' }) === 1 ? f : null;
    });
    expect(failed.value(`${P}backups_total`, { type: 'manual', status: 'failed' })).toBe(1);
    expect(failed.value(`${P}catalog_backups`, { type: 'manual', status: 'failed' })).toBe(1);
    expect(failed.value(`${P}lock_waits_total`, { queue: 'backup' })).toBe(0);

    // Hold the database lock from here: the next backup must wait, and the wait is counted.
    const redis = producerRedis(stack.box.config.redisUrl);
    await waitForRedis(redis, stack.box.config.redisUrl, 5_000);
    const held = await new DatabaseLock(redis, stack.box.config.queuePrefix, stack.catalog, 30_000).tryAcquire('metrics-test');
    expect(held).not.toBeNull();
    let released = false;
    try {
      const queued = await request(stack.producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async');
      expect(queued.status).toBe(202);
      await waitUntil('a lock wait to be counted', async () => (await scrape()).value(`${P}lock_waits_total`, { queue: 'backup' }) >= 1);
      await held!.release();
      released = true;
      await waitUntil('the waiting backup to finish', async () => {
        const f = await scrape();
        return f.value(`${P}backups_total`, { type: 'manual', status: 'completed' }) === 2;
      });
    } finally {
      if (!released) await held!.release();
      redis.disconnect();
    }
  });
});

describe('the exposition reader these tests use', () => {
  it('rejects what Prometheus would reject', () => {
    expect(() => parseExposition('x_total 1\n')).toThrow(/undeclared family/);
    expect(() => parseExposition('# TYPE x counter\n# TYPE x counter\n')).toThrow(/announced twice/);
    expect(() => parseExposition('# TYPE x counter\nx{a="1" 1\n')).toThrow(/not a sample/);
    expect(() => parseExposition('# TYPE x counter\nx one\n')).toThrow(/bad value/);
    const ok = parseExposition('# TYPE h histogram\nh_bucket{le="+Inf",q="a"} 2\nh_count{q="a"} 2\nh_sum{q="a"} 0.5\n');
    expect(ok.value('h_count', { q: 'a' })).toBe(2);
  });
});
