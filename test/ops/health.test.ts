import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN, waitUntil } from '../helpers/env.js';
import { startWorkerProcess } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import { PrivateRedis } from '../helpers/redis-server.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { useStack } from '../helpers/stack.js';

// This file stops Redis, so it brings its own: the shared one on 6379 stays up for other tests.
let redis: PrivateRedis;

const HOUR = 3_600_000;

beforeAll(async () => {
  redis = await PrivateRedis.start();
});
afterAll(() => redis?.stop());

const stack = useStack('health', {
  env: () => ({ REDIS_URL: redis.url, AUTO_BACKUP_ENABLED: 'true', AUTO_BACKUP_INTERVAL: String(HOUR), HEARTBEAT_INTERVAL: '300' }),
});

// The details (problems, sizes, workers, backups) are for the token holder; anyone gets states only.
const health = () => request(stack.producer.server).get('/health').set(auth);

describe('GET /health', () => {
  it('is ok with Redis, the database, a live worker and a recent backup, and says so without a token or secrets', async () => {
    const backup = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(backup.status).toBe(201);

    const res = await health();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      problems: [],
      redis: { reachable: true },
      database: { reachable: true, journalMode: 'wal' },
      workers: { alive: 1 },
      backups: { autoBackupEnabled: true, autoBackupInterval: HOUR, overdue: false, failedBackups: 0 },
    });
    const last = stack.catalog.lastSuccessfulBackup()!;
    expect(res.body.backups.lastSuccessfulBackup).toBe(last.completed_at);
    expect(res.body.backups.lastSuccessfulBackupAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(res.body.backups.lastSuccessfulBackupAgeSeconds).toBeLessThan(3_600);
    expect(res.body.backups.lastBackupSize).toBe(last.file_size_bytes);
    expect(res.body.backups.statistics).toEqual(stack.catalog.statistics());
    expect(res.body.disk.freeBytes).toBeGreaterThan(0);
    expect(res.body.disk.neededForNextBackup).toBeGreaterThan(0);
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(TEST_TOKEN);
    expect(text).not.toContain(stack.box.dir);
    expect(text).not.toContain(redis.url);

    const open = await request(stack.producer.server).get('/health');
    expect(open.status).toBe(200);
    expect(open.body).toMatchObject({
      status: 'ok',
      redis: { reachable: true },
      database: { reachable: true },
      workers: { anyAlive: true },
    });
    const openText = JSON.stringify(open.body);
    expect(openText).not.toContain(TEST_TOKEN);
    expect(openText).not.toContain(stack.box.dir);
    expect(openText).not.toContain(redis.url);
  });

  it('is degraded (still 200) when the last successful backup is older than twice the interval', async () => {
    const last = stack.catalog.lastSuccessfulBackup()!;
    const old = new Date(Date.now() - 3 * HOUR).toISOString();
    const setDates = (started: string, completed: string | null) =>
      withCatalogDb(stack.catalog.file, (db) =>
        db.prepare('UPDATE backup_log SET started_at = ?, completed_at = ? WHERE id = ?').run(started, completed, last.id),
      );
    setDates(old, old);
    try {
      const res = await health();
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('degraded');
      expect(res.body.backups.overdue).toBe(true);
      expect(res.body.backups.lastSuccessfulBackupAgeSeconds).toBeGreaterThanOrEqual(3 * 3_600);
      expect(res.body.problems).toEqual([expect.stringMatching(/last successful backup is 3 h old.*every 60 min/)]);
    } finally {
      setDates(last.started_at, last.completed_at);
    }
    expect((await health()).body.status).toBe('ok');
  });

  it("is degraded when no worker is alive, once a killed worker's heartbeat has expired", async () => {
    await stack.worker.kill(); // SIGKILL: no clean goodbye, only the heartbeat's expiry tells
    const res = await waitUntil('the dead worker to drop out', async () => {
      const r = await health();
      return r.body.workers?.alive === 0 ? r : null;
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(res.body.problems).toEqual(['no worker process is alive: queued jobs will wait']);

    stack.worker = await startWorkerProcess(stack.box.env);
    const back = await waitUntil('the new worker to count', async () => {
      const r = await health();
      return r.body.status === 'ok' ? r : null;
    });
    expect(back.body.workers.alive).toBe(1);
  });

  it('is down with 503 when Redis is unreachable, and ok again once it is back', async () => {
    await redis.stop();
    const res = await health();
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('down');
    expect(res.body.redis.reachable).toBe(false);
    expect(res.body.workers.alive).toBeNull();
    expect(res.body.problems).toContain('Redis is unreachable: no backup, verify or restore can be queued');
    // The catalog still answers: the statistics come from it, not from Redis.
    expect(res.body.backups.statistics.totalBackups).toBe(stack.catalog.statistics().totalBackups);

    await redis.start();
    const back = await waitUntil(
      'health to recover with Redis',
      async () => {
        const r = await health();
        return r.status === 200 && r.body.status === 'ok' ? r : null;
      },
      30_000,
    );
    expect(back.body.redis.reachable).toBe(true);
  });
});
