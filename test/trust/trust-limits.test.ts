import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { spawnTs, startWorkerProcess } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import { ConfigError } from '../../src/shared/domain/errors.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { verifyDedupId } from '../../src/shared/jobs/queues.js';
import type Database from 'better-sqlite3';
import { catalogDb } from '../helpers/catalog-db.js';
import { useStack } from '../helpers/stack.js';

/** The test's own connection to the catalog, for rows the service never writes (old history). */
let db: Database.Database;
/** Two completed backups, oldest first. */
let backupIds: number[];

const stack = useStack('trust-limits', { env: { JOB_ATTEMPTS: '2' } });

beforeAll(async () => {
  db = catalogDb(stack.catalog.file);
  backupIds = [];
  for (let i = 0; i < 2; i++) {
    const res = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    backupIds.push(res.body.backup.id as number);
  }
});
afterAll(() => db?.close());

const put = (body: unknown) =>
  request(stack.producer.server)
    .put('/api/backups/config')
    .set(auth)
    .send(body as object);
const schedulers = () => stack.producer.deps.queues.verify.getJobSchedulers();
const DAY = 86_400_000;

describe('schedules that never fire, or fire too often (defect 8)', () => {
  it('answers 400 for a cron pattern with no next run, and leaves the scheduler in Redis as it was', async () => {
    expect((await put({ verifySchedule: '0 3 * * 0' })).status).toBe(200);
    const before = await schedulers();
    expect(before).toEqual([expect.objectContaining({ key: 'scheduled-verify', pattern: '0 3 * * 0', next: expect.any(Number) })]);

    for (const never of ['0 0 31 2,4,6,9,11 *', '0 0 30 2 *']) {
      const res = await put({ verifySchedule: never });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        success: false,
        error: { code: 'invalid_body', message: expect.stringMatching(/^verifySchedule: /) },
      });
    }
    const res = await put({ verifySchedule: '0 0 31 2,4,6,9,11 *' });
    expect(res.body.error.message).toMatch(/never runs/);

    expect(await schedulers()).toEqual(before);
    const config = await request(stack.producer.server).get('/api/backups/config').set(auth);
    expect(config.body.config).toMatchObject({
      verifySchedule: '0 3 * * 0',
      nextScheduledVerification: new Date(before[0]!.next!).toISOString(),
    });
    // Leap days fire rarely, but they do fire.
    expect((await put({ verifySchedule: '0 0 29 2 *' })).status).toBe(200);
  });

  it('answers 400 for a verification sweep less than a minute apart, as cron or as milliseconds', async () => {
    expect((await put({ verifySchedule: '0 4 * * *' })).status).toBe(200);
    const before = await schedulers();
    for (const tooOften of ['*/30 * * * * *', '0,10 * * * * *', '* * * * * *', '59999', '1000']) {
      const res = await put({ verifySchedule: tooOften });
      expect(res.status, tooOften).toBe(400);
      expect(res.body).toEqual({
        success: false,
        error: { code: 'invalid_body', message: expect.stringMatching(/^verifySchedule: .*at least/) },
      });
    }
    expect(await schedulers()).toEqual(before);
    // Exactly a minute apart is allowed.
    for (const ok of ['* * * * *', '0 * * * * *', '60000']) expect((await put({ verifySchedule: ok })).status, ok).toBe(200);
    expect((await put({ verifySchedule: 'off' })).status).toBe(200);
    expect(await schedulers()).toEqual([]);
  });

  it('refuses the same schedules at start-up, naming VERIFY_SCHEDULE', async () => {
    expect(() => parseConfig({ VERIFY_SCHEDULE: '0 0 31 2,4,6,9,11 *' })).toThrow(ConfigError);
    expect(() => parseConfig({ VERIFY_SCHEDULE: '0 0 31 2,4,6,9,11 *' })).toThrow(
      /^Invalid VERIFY_SCHEDULE="0 0 31 2,4,6,9,11 \*": .*never runs/,
    );
    expect(() => parseConfig({ VERIFY_SCHEDULE: '*/5 * * * * *' })).toThrow(
      /^Invalid VERIFY_SCHEDULE="\*\/5 \* \* \* \* \*": .*at least 1 minute/,
    );
    expect(() => parseConfig({ VERIFY_SCHEDULE: '30000' })).toThrow(/^Invalid VERIFY_SCHEDULE="30000": expected at least 60000 ms/);

    const proc = spawnTs('src/producer/server.ts', { ...stack.box.env, VERIFY_SCHEDULE: '0 0 31 2,4,6,9,11 *' });
    const { code } = await proc.exited;
    expect(code).not.toBe(0);
    expect(proc.output()).toMatch(/Invalid VERIFY_SCHEDULE="0 0 31 2,4,6,9,11 \*"/);
  });

  it('drops a stored schedule that today is refused, and keeps the other stored settings', async () => {
    expect((await put({ maxBackups: 25 })).status).toBe(200);
    // As an older version stored it, before schedules were checked for their next run.
    const stored = stack.catalog.getSetting<Record<string, unknown>>('runtime-config')!;
    stack.catalog.setSetting('runtime-config', { ...stored, verifySchedule: '0 0 31 2,4,6,9,11 *' });
    const config = await request(stack.producer.server).get('/api/backups/config').set(auth);
    expect(config.body.config).toMatchObject({ maxBackups: 25, verifySchedule: 'off' });
    expect((await put({ maxBackups: 10 })).status).toBe(200);
  });
});

describe('bounded queues, history and temp files (defect 9)', () => {
  const jobsOf = async (queue: 'verify' | 'restore', backupId: number) =>
    (await stack.producer.deps.queues[queue].getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'])).filter(
      (j) => (j.data as { backupId?: number }).backupId === backupId,
    );

  it('joins a second verify or restore of the same backup to the one already waiting', async () => {
    const [older, newer] = backupIds as [number, number];
    const { verify, restore } = stack.producer.deps.queues;
    // Paused queues keep the jobs waiting, as behind a busy worker.
    await verify.pause();
    await restore.pause();
    try {
      const post = (url: string, body?: object) =>
        request(stack.producer.server).post(url).set(auth).set('Prefer', 'respond-async').send(body);
      const v1 = await post(`/api/backups/${newer}/verify`);
      const v2 = await post(`/api/backups/${newer}/verify`);
      const v3 = await post(`/api/backups/${newer}/verify`, { mode: 'full' });
      expect([v1.status, v2.status, v3.status]).toEqual([202, 202, 202]);
      expect(v2.body).toMatchObject({ jobId: v1.body.jobId, joined: true });
      expect(v3.body.jobId).toBe(v1.body.jobId);
      // Another mode or another backup is other work.
      const quick = await post(`/api/backups/${newer}/verify`, { mode: 'quick' });
      const other = await post(`/api/backups/${older}/verify`);
      expect(new Set([v1.body.jobId, quick.body.jobId, other.body.jobId]).size).toBe(3);
      expect(await verify.getJobCounts('waiting')).toEqual({ waiting: 3 });
      expect((await verify.getJobs(['waiting'])).filter((j) => 'backupId' in j.data && j.data.backupId === newer)).toHaveLength(2);

      const r1 = await post(`/api/backups/${older}/restore`);
      const r2 = await post(`/api/backups/${older}/restore`);
      expect(r2.body).toMatchObject({ jobId: r1.body.jobId, joined: true });
      expect(await restore.getJobCounts('waiting')).toEqual({ waiting: 1 });
    } finally {
      await verify.resume();
      await restore.resume();
    }
    await waitUntil('the joined jobs to finish', async () => {
      const v = await verify.getJobCounts('waiting', 'active', 'delayed');
      const r = await restore.getJobCounts('waiting', 'active', 'delayed');
      return [...Object.values(v), ...Object.values(r)].every((n) => n === 0);
    });
    expect(db.prepare('SELECT count(*) AS n FROM restore_log WHERE backup_id = ?').get(older)).toEqual({ n: 1 });
    // Once finished, the same request queues new work again.
    const again = await request(stack.producer.server).post(`/api/backups/${newer}/verify`).set(auth);
    expect(again.status).toBe(200);
    expect(again.body.valid).toBe(true);
  });

  it('keeps the verification sweep from queueing a second verify for a backup that has one pending', async () => {
    const [older, newer] = backupIds as [number, number];
    const { verify } = stack.producer.deps.queues;
    const since = new Date().toISOString();
    // A full verify of `older` pending, as one waiting out the backoff before its retry.
    const pending = await verify.add(
      'verify',
      { backupId: older, mode: 'full' },
      { jobId: 'verify-pending-retry', delay: 120_000, deduplication: { id: verifyDedupId(older, 'full') } },
    );
    // Milliseconds schedules fire at once.
    expect((await put({ verifySchedule: '60000' })).status).toBe(200);
    try {
      await waitUntil(
        'the sweep, then the verify jobs it queued, to finish',
        async () =>
          (await verify.getJobs(['completed'])).some((j) => j.name === 'verify-kept-backups' && j.timestamp >= Date.parse(since)) &&
          Object.values(await verify.getJobCounts('waiting', 'active')).every((n) => n === 0),
        30_000,
      );
    } finally {
      expect((await put({ verifySchedule: 'off' })).status).toBe(200);
    }
    const verifiedNewer = db.prepare('SELECT 1 FROM verification WHERE backup_id = ? AND verified_at >= ?').get(newer, since);
    expect(verifiedNewer).toBeDefined();
    const forOlder = await jobsOf('verify', older);
    expect(forOlder.filter((j) => j.timestamp >= Date.parse(since)).map((j) => j.id)).toEqual([pending.id]);
    expect(await verify.getJobState(pending.id!)).toBe('delayed');
    await pending.remove();
  });

  it('caps offset in GET /api/backups and points to the cursor', async () => {
    const deep = await request(stack.producer.server).get('/api/backups?offset=10001').set(auth);
    expect(deep.status).toBe(400);
    expect(deep.body).toEqual({
      success: false,
      error: { code: 'invalid_query', message: expect.stringMatching(/^offset: at most 10000; page further with cursor/) },
    });
    const edge = await request(stack.producer.server).get('/api/backups?offset=10000').set(auth);
    expect(edge.status).toBe(200);
    expect(edge.body.backups).toEqual([]);
    const first = await request(stack.producer.server).get('/api/backups?limit=1').set(auth);
    const next = await request(stack.producer.server).get(`/api/backups?limit=1&cursor=${first.body.nextCursor}`).set(auth);
    expect(next.body.backups[0].id).toBeLessThan(first.body.backups[0].id);
  });

  it('prunes history older than HISTORY_RETENTION_DAYS from the worker, keeping what retention relies on', async () => {
    await stack.worker.stop();
    const ago = (days: number, plusMs = 0) => new Date(Date.now() - days * DAY + plusMs).toISOString();
    const insertBackup = (status: string, at: string) =>
      Number(
        db
          .prepare(
            `INSERT INTO backup_log (backup_type, file_path, started_at, completed_at, status, error_message)
             VALUES ('manual', ?, ?, ?, ?, ?)`,
          )
          .run(path.join(stack.box.config.backupDir, `gone-${status}-${at}.db`), at, at, status, status === 'failed' ? 'disk full' : null)
          .lastInsertRowid,
      );
    const oldFailed = insertBackup('failed', ago(200));
    const recentFailed = insertBackup('failed', ago(10));
    // A kept backup verified only long ago: one full check, then eleven quick ones.
    const kept = insertBackup('completed', ago(300));
    const verify = db.prepare(
      `INSERT INTO verification (backup_id, mode, verified_at, valid, message, checks) VALUES (?, ?, ?, 1, 'ok', '[]')`,
    );
    const lastFull = Number(verify.run(kept, 'full', ago(200)).lastInsertRowid);
    const quicks = Array.from({ length: 11 }, (_, i) => Number(verify.run(kept, 'quick', ago(199, i * 1000)).lastInsertRowid));
    // Twelve old restores, then one ten days old; any run by the tests above are recent too.
    const restore = db.prepare(
      `INSERT INTO restore_log (job_id, backup_id, started_at, completed_at, status) VALUES (?, ?, ?, ?, 'completed')`,
    );
    const oldRestores = Array.from({ length: 12 }, (_, i) =>
      Number(restore.run(`old-${i}`, kept, ago(150, i), ago(150, i)).lastInsertRowid),
    );
    restore.run('recent', kept, ago(10), ago(10));
    const recentRestores = (
      db.prepare('SELECT id FROM restore_log WHERE job_id NOT LIKE ? ORDER BY id').all('old-%') as { id: number }[]
    ).map((r) => r.id);
    const recentVerifications = db.prepare('SELECT count(*) AS n FROM verification WHERE backup_id != ?').get(kept) as {
      n: number;
    };

    stack.worker = await startWorkerProcess(stack.box.env);
    const exists = (table: string, id: number) => Boolean(db.prepare(`SELECT 1 FROM ${table} WHERE id = ?`).get(id));
    await waitUntil('the first reaper pass to prune', () => !exists('backup_log', oldFailed));

    expect(exists('backup_log', recentFailed)).toBe(true);
    expect(exists('backup_log', kept)).toBe(true);
    for (const id of backupIds) expect(exists('backup_log', id)).toBe(true);
    // Ten newest kept, plus the last full one; only the oldest quick check goes.
    expect(exists('verification', lastFull)).toBe(true);
    expect(exists('verification', quicks[0]!)).toBe(false);
    for (const id of quicks.slice(1)) expect(exists('verification', id)).toBe(true);
    expect(db.prepare('SELECT count(*) AS n FROM verification WHERE backup_id != ?').get(kept)).toEqual(recentVerifications);
    const detail = await request(stack.producer.server).get(`/api/backups/${kept}`).set(auth);
    expect(detail.body.backup.lastVerification).toMatchObject({ mode: 'quick' });
    // Recent restores stay; of the old ones, those among the ten newest rows (with 'recent') stay too.
    for (const id of recentRestores) expect(exists('restore_log', id)).toBe(true);
    expect(oldRestores.filter((id) => exists('restore_log', id))).toEqual(oldRestores.slice(-9));
  });

  it("removes .tmp-put- and .tmp-text- leftovers of dead or long-gone writers, keeping a live writer's", async () => {
    await stack.worker.stop();
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!;
    const dir = stack.box.config.backupDir;
    const make = (name: string, ageMs: number) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, 'partial');
      const at = new Date(Date.now() - ageMs);
      fs.utimesSync(file, at, at);
      return file;
    };
    const deadWriter = make(`.tmp-put-${dead}-0a1b2c3d4e5f`, 2 * 60_000);
    const longIdle = make(`.tmp-text-${process.pid}-0a1b2c3d4e5f`, 20 * 60_000);
    const liveFresh = make(`.tmp-put-${process.pid}-abcdefabcdef`, 0);
    // Could be a writer in another container, whose pids mean nothing here: given a grace minute.
    const deadFresh = make(`.tmp-text-${dead}-abcdefabcdef`, 0);
    const unrelated = make('notes.txt', 20 * 60_000);

    stack.worker = await startWorkerProcess(stack.box.env);
    await waitUntil('the worker to remove the leftovers', () => !fs.existsSync(deadWriter) && !fs.existsSync(longIdle));
    for (const kept of [liveFresh, deadFresh, unrelated]) expect(fs.existsSync(kept), kept).toBe(true);
  });
});
