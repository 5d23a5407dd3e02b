/**
 * A storm: 200 concurrent backup, verify and restore requests from several clients against a
 * producer process and three worker processes.
 */
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { catalogMatchesFiles, inspectQueues, isWellFormed, tempFiles } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { useStack } from '../helpers/stack.js';
import { balanceSum, integrity } from '../helpers/workstation-db.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { restoreJobOfSafety } from '../../src/shared/jobs/job-ids.js';

const REQUESTS = 200;
const CLIENTS = 5;

const stack = useStack('storm', {
  env: { REQUEST_TIMEOUT: '15000', MAX_BACKUPS: '1000', LOCK_RETRY_DELAY: '100', WORKER_CONCURRENCY: '2' },
  workers: 3,
  producer: 'process',
});

interface Interval {
  what: string;
  start: string;
  end: string;
}

describe('a storm of concurrent requests', () => {
  it(`answers all ${REQUESTS} requests well, runs one backup or restore at a time, and leaves catalog and files in agreement`, async () => {
    const { box, producer, workers, catalog } = stack;
    const post = (path: string, client: number, body?: unknown, async = false) =>
      fetch(`${producer.url}${path}`, {
        method: 'POST',
        headers: {
          ...auth,
          'User-Agent': `storm-client-${client}`,
          ...(body ? { 'Content-Type': 'application/json' } : {}),
          ...(async ? { Prefer: 'respond-async' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    // Something to verify and restore from.
    const seeds: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await post('/api/backups', 0);
      expect(res.status).toBe(201);
      seeds.push(((await res.json()) as { backup: { id: number } }).backup.id);
    }

    const requests = Array.from({ length: REQUESTS }, (_, i) => {
      const client = i % CLIENTS;
      const seed = seeds[i % seeds.length]!;
      const kind = i % 50;
      if (kind < 25)
        return { what: 'backup', send: () => post('/api/backups', client, i % 3 ? undefined : { type: 'pre-migration' }, i % 2 === 0) };
      if (kind < 49)
        return {
          what: 'verify',
          send: () => post(`/api/backups/${seed}/verify`, client, i % 4 ? undefined : { mode: 'quick' }, i % 3 === 0),
        };
      return { what: 'restore', send: () => post(`/api/backups/${seed}/restore`, client, undefined, i % 2 === 0) };
    });
    const answers = await Promise.all(
      requests.map(async (r) => {
        const res = await r.send();
        return { what: r.what, status: res.status, body: (await res.json()) as Record<string, unknown> };
      }),
    );

    const bad = answers.filter((a) => !isWellFormed(a.status, a.body) || ![200, 201, 202].includes(a.status));
    expect(bad.map((a) => `${a.what} ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`)).toEqual([]);
    const byStatus = answers.reduce<Record<string, number>>(
      (m, a) => ({ ...m, [`${a.what} ${a.status}`]: (m[`${a.what} ${a.status}`] ?? 0) + 1 }),
      {},
    );

    // Let everything that was queued finish.
    const q = inspectQueues(box.config);
    try {
      await waitUntil(
        'every queue to drain',
        async () => {
          for (const queue of [q.backup, q.verify, q.restore]) {
            const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
            if (Object.values(c).some((n) => n > 0)) return false;
          }
          return true;
        },
        300_000,
        250,
      );
      expect(await q.backup.getFailedCount()).toBe(0);
      expect(await q.verify.getFailedCount()).toBe(0);
      expect(await q.restore.getFailedCount()).toBe(0);
    } finally {
      await q.close();
    }

    // One backup or restore at a time: the catalog's intervals, all taken under the lock, never overlap
    // (a restore's own safety backup runs inside it).
    const backups = catalog.listBackups({ limit: 10_000 });
    const restores = withCatalogDb(catalog.file, (db) => db.prepare('SELECT * FROM restore_log ORDER BY id').all()) as {
      job_id: string;
      started_at: string;
      completed_at: string;
      status: string;
      safety_backup_id: number;
    }[];
    const intervals: Interval[] = [
      ...backups
        .filter((b) => !(b.job_id && restoreJobOfSafety(b.job_id)))
        .map((b) => ({ what: `backup ${b.id}`, start: b.started_at, end: b.completed_at! })),
      ...restores.map((r) => ({ what: `restore ${r.job_id}`, start: r.started_at, end: r.completed_at })),
    ].sort((a, b) => a.start.localeCompare(b.start));
    for (let i = 1; i < intervals.length; i++) {
      expect(intervals[i]!.start >= intervals[i - 1]!.end, `${intervals[i - 1]!.what} overlaps ${intervals[i]!.what}`).toBe(true);
    }
    for (const r of restores) {
      const safety = backups.find((b) => b.id === r.safety_backup_id)!;
      expect(safety.started_at >= r.started_at && safety.completed_at! <= r.completed_at).toBe(true);
    }

    expect(backups.every((b) => b.status === 'completed')).toBe(true);
    expect(restores.every((r) => r.status === 'completed')).toBe(true);
    expect(tempFiles(box.config.backupDir)).toEqual([]);
    catalogMatchesFiles(box.config.backupDir, catalog.completedBackups());
    expect(integrity(box.config.databasePath)).toBe('ok');
    expect(balanceSum(box.config.databasePath)).toBe(100_000);
    for (const p of [producer.proc, ...workers]) expect(p.child.exitCode).toBeNull();
    console.info(`storm: ${JSON.stringify(byStatus)}; backups ${backups.length}, restores ${restores.length}`);
  }, 420_000);
});
