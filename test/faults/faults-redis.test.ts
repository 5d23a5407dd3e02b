/**
 * Redis crashes and comes back empty while clients keep sending requests. The test runs its own
 * redis-server (never the shared one), a producer process and two worker processes against it.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { catalogMatchesFiles, inspectQueues, isWellFormed, tempFiles } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { PrivateRedis } from '../helpers/redis-server.js';
import { useStack } from '../helpers/stack.js';

const RESTARTS = 2;

let redis: PrivateRedis;

beforeAll(async () => {
  redis = await PrivateRedis.start();
});
afterAll(() => redis?.kill());

const stack = useStack('redis', {
  env: () => ({
    REDIS_URL: redis.url,
    REQUEST_TIMEOUT: '20000',
    LOCK_TTL: '3000',
    JOB_LOCK_DURATION: '4000',
    STALLED_INTERVAL: '1000',
    REAPER_INTERVAL: '1000',
    MAX_BACKUPS: '100',
  }),
  sizeMb: 2,
  workers: 2,
  producer: 'process',
});

/**
 * Asks for a backup and waits for its outcome: a `201`, or after a `202` (REQUEST_TIMEOUT ran out
 * on a loaded machine) the job's final state. Resolves to whether a backup completed.
 */
async function backupCompletes(url: string): Promise<boolean> {
  const res = await request(url).post('/api/backups').set(auth);
  if (res.status === 201) return res.body.backup.status === 'completed';
  if (res.status !== 202) return false;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const job = await request(url)
      .get(res.body.statusUrl as string)
      .set(auth);
    if (job.body.job?.state === 'completed') return job.body.job.result.status === 'completed';
    if (job.status !== 200 || job.body.job?.state === 'failed') return false;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

interface Answer {
  what: string;
  status: number;
  body: unknown;
}

/** Clients that keep asking for backups, verifications, lists and health until stopped. */
function load(url: string) {
  const answers: Answer[] = [];
  let running = true;
  const ask = async (what: string, send: () => request.Test) => {
    try {
      const res = await send();
      answers.push({ what, status: res.status, body: res.body });
    } catch (err) {
      answers.push({ what, status: 0, body: String(err) });
    }
  };
  const client = async (n: number) => {
    while (running) {
      const last = stack.catalog.lastSuccessfulBackup();
      await Promise.all([
        ask('backup', () =>
          request(url)
            .post('/api/backups')
            .set(auth)
            .set('Prefer', 'respond-async')
            .send({ type: n % 2 ? 'manual' : 'pre-migration' }),
        ),
        ask('list', () => request(url).get('/api/backups?limit=5').set(auth)),
        ask('health', () => request(url).get('/health')),
        ...(last
          ? [ask('verify', () => request(url).post(`/api/backups/${last.id}/verify`).set(auth).set('Prefer', 'respond-async'))]
          : []),
      ]);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const clients = Promise.all([0, 1, 2].map(client));
  return {
    answers,
    async stop() {
      running = false;
      await clients;
    },
  };
}

describe('Redis restarted under load', () => {
  it(`the producer answers 503 while it is away, and producer and workers recover by themselves (${RESTARTS} restarts)`, async () => {
    const { box, producer, workers, catalog } = stack;
    const pids = [producer.proc.child.pid, ...workers.map((w) => w.child.pid)];
    const q = inspectQueues(box.config);
    try {
      // A schedule that Redis forgets when it restarts empty; the producer must put it back.
      const put = await request(producer.url)
        .put('/api/backups/config')
        .set(auth)
        .send({ autoBackupEnabled: true, autoBackupInterval: 3_600_000 });
      expect(put.status).toBe(200);
      expect(await q.backup.getJobSchedulersCount()).toBe(1);
      expect(await backupCompletes(producer.url)).toBe(true);

      const traffic = load(producer.url);
      const outages: Answer[] = [];
      for (let i = 0; i < RESTARTS; i++) {
        await new Promise((r) => setTimeout(r, 500));
        await redis.kill();

        const down = await waitUntil('the producer to notice', async () => {
          const res = await request(producer.url).post('/api/backups').set(auth);
          return res.status === 503 ? res : null;
        });
        expect(down.body).toEqual({
          success: false,
          error: { code: 'redis_unavailable', message: expect.stringMatching(/Redis\) is unavailable/) },
        });
        const health = await request(producer.url).get('/health');
        expect(health.status).toBe(503);
        expect(health.body).toMatchObject({ status: 'down', redis: { reachable: false } });
        // The catalog does not need Redis: listing keeps working.
        const list = await request(producer.url).get('/api/backups').set(auth);
        expect(list.status).toBe(200);
        expect(list.body.backups.length).toBeGreaterThan(0);
        outages.push({ what: 'backup during outage', status: down.status, body: down.body });
        await new Promise((r) => setTimeout(r, 1_000));

        await redis.start();
        await waitUntil('a backup to complete again through the restarted Redis', () => backupCompletes(producer.url), 180_000, 500);
        await waitUntil('the producer to restore the auto-backup schedule', async () => (await q.backup.getJobSchedulersCount()) === 1);
        expect((await request(producer.url).get('/health')).status).toBe(200);
      }
      await traffic.stop();

      // Nobody was restarted: the same processes did all of this.
      expect([producer.proc.child.pid, ...workers.map((w) => w.child.pid)]).toEqual(pids);
      for (const p of [producer.proc, ...workers]) expect(p.child.exitCode).toBeNull();

      // Every answer was one the API means to give; the only 5xx is the deliberate 503.
      const all = [...traffic.answers, ...outages];
      const statuses = new Set(all.map((a) => a.status));
      const bad = all.filter((a) => !isWellFormed(a.status, a.body) || (a.status >= 500 && a.status !== 503));
      expect(bad.map((a) => `${a.what} ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`).slice(0, 10)).toEqual([]);
      expect(statuses.has(503)).toBe(true);
      expect(all.length).toBeGreaterThan(50);
      console.info(`redis restarts: ${RESTARTS}, requests under load: ${all.length}, statuses: ${[...statuses].sort().join(', ')}`);

      // Jobs that Redis forgot leave no row in progress for long: the reaper settles them.
      await waitUntil('no backup row in progress', () => catalog.inProgressBackups().length === 0, 30_000);
      // Backups still queued by the clients run (and apply retention) after they stopped: the
      // catalog is compared with the files once the queue is idle.
      await waitUntil(
        'the backup queue to be idle',
        async () => {
          const counts = await q.backup.getJobCounts('waiting', 'active', 'prioritized');
          return Object.values(counts).every((n) => n === 0) && catalog.inProgressBackups().length === 0;
        },
        60_000,
      );
      await waitUntil('no temp files', () => tempFiles(box.config.backupDir).length === 0, 30_000);
      catalogMatchesFiles(box.config.backupDir, catalog.completedBackups());
    } finally {
      await q.close();
    }
  }, 420_000);
});
