/**
 * Faults under the WAL archive.
 * - A `-wal` file whose tail is torn (cut in the middle of a frame, or a flipped byte in its last
 *   frame): the archive ships the commits before it and nothing after, and a replay of the archive
 *   gives exactly those. The archiver runs in this process on a copy of a real WAL file; SQLite's
 *   own reading of the same damaged file is the reference.
 * - The archiving worker killed (SIGKILL) or stopped (SIGTERM) with a second worker running, and
 *   Redis restarted empty: archiving goes on, the chain has no silent gap, and a restore to latest
 *   is complete. Real worker processes, real Redis (a private one for the restart), a writer in a
 *   process of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import { createBackup } from '../../src/shared/backup/backup.js';
import type { BackupRow, Catalog } from '../../src/shared/catalog/catalog.js';
import { isTempName } from '../../src/shared/runtime/files.js';
import { WalArchiver } from '../../src/shared/wal/archiver.js';
import { archiverState } from '../../src/shared/wal/archiver-state.js';
import { discard, replayGeneration } from '../../src/shared/wal/replay.js';
import { frameSize, parseWalHeader, scanFrames, startOf, WAL_HEADER_SIZE } from '../../src/shared/wal/wal-format.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { testLogger } from '../helpers/log.js';
import { killAll, startWorkerProcess } from '../helpers/processes.js';
import { auth, openCatalog, startTestProducer } from '../helpers/producer.js';
import { PrivateRedis } from '../helpers/redis-server.js';
import { WebhookReceiver } from '../helpers/webhook.js';
import {
  addEventsTable,
  archivingUnderWay,
  BALANCE_TOTAL,
  chainProblems,
  deleteDatabase,
  eventsOf,
  sleep,
  startWalWriter,
  stateOf,
  type WalWriter,
  unannouncedGenerations,
  unreadableSegments,
} from '../helpers/wal-writer.js';
import { createWorkstationDb, query } from '../helpers/workstation-db.js';

describe('a torn tail in the -wal file', () => {
  /** Transactions in the WAL file; the last one is the one the damage tears. */
  const COMMITS = 30;

  let box: Sandbox;
  let catalog: Catalog;
  let snapshot: BackupRow;
  /** The database file before any of the WAL's frames, and the intact WAL beside it. */
  let pristineDb: string;
  let pristineWal: Buffer;
  let pageSize: number;
  /** Index (from 0) of the last transaction's commit frame, and of the one before it. */
  let lastCommitFrame: number;
  let previousCommitFrame: number;

  beforeAll(async () => {
    box = sandbox('wal-torn', { WAL_ARCHIVE_ENABLED: 'true', WAL_ARCHIVE_INTERVAL: '200' });
    const live = box.config.databasePath;
    createWorkstationDb(live, { sizeMb: 0.5 });
    addEventsTable(live);
    catalog = openCatalog(box.config);
    // The generation's snapshot: a real backup of the database before the WAL's transactions.
    snapshot = await createBackup(
      { config: box.config, catalog, log: testLogger(box.config, 'wal-torn') },
      { type: 'manual', jobId: null },
    );

    const app = new Database(live);
    app.pragma('wal_autocheckpoint = 0');
    const insert = app.prepare('INSERT INTO events (n, at) VALUES (?, ?)');
    const move = app.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
    for (let n = 1; n <= COMMITS; n++) {
      app.transaction(() => {
        insert.run(n, new Date().toISOString());
        move.run(-n, 1 + (n % 100));
        move.run(n, 1 + ((n * 7) % 100));
      })();
    }
    pristineDb = path.join(box.dir, 'pristine.db');
    fs.copyFileSync(live, pristineDb);
    pristineWal = fs.readFileSync(`${live}-wal`);
    app.close();

    const header = parseWalHeader(pristineWal.subarray(0, WAL_HEADER_SIZE))!;
    pageSize = header.pageSize;
    const commitFrames: number[] = [];
    for (let i = 0; WAL_HEADER_SIZE + (i + 1) * frameSize(pageSize) <= pristineWal.length; i++) {
      if (pristineWal.readUInt32BE(WAL_HEADER_SIZE + i * frameSize(pageSize) + 4) > 0) commitFrames.push(i);
    }
    expect(commitFrames).toHaveLength(COMMITS);
    [previousCommitFrame, lastCommitFrame] = commitFrames.slice(-2) as [number, number];
    // The torn transaction spans several frames, so a scan that stopped at the last valid frame
    // instead of the last commit would ship a half transaction.
    expect(lastCommitFrame - previousCommitFrame).toBeGreaterThan(1);
  });

  afterAll(async () => {
    catalog?.close();
    await box?.cleanup();
  });

  const frameStart = (index: number) => WAL_HEADER_SIZE + index * frameSize(pageSize);

  /** The last frame cut in half. */
  const cutMidFrame = () => pristineWal.subarray(0, frameStart(lastCommitFrame) + Math.floor(frameSize(pageSize) / 2));
  /** One byte of the last frame's page flipped. */
  function flippedLastFrame(): Buffer {
    const wal = Buffer.from(pristineWal);
    const at = frameStart(lastCommitFrame) + 24 + 100;
    wal[at] = wal[at]! ^ 0xff;
    return wal;
  }

  /** What SQLite itself reads from the database with this WAL beside it (on a copy of both). */
  function sqliteReading(wal: Buffer): ReturnType<typeof eventsOf> {
    const dir = fs.mkdtempSync(path.join(box.dir, 'reference-'));
    const file = path.join(dir, 'reference.db');
    fs.copyFileSync(pristineDb, file);
    fs.writeFileSync(`${file}-wal`, wal);
    return eventsOf(file);
  }

  /**
   * Puts the damaged WAL beside the live database, records a generation that begins at its first
   * frame (with the snapshot from before it), runs the archiver until it has shipped a segment,
   * and returns the generation's id.
   */
  async function archiveDamagedWal(wal: Buffer): Promise<number> {
    const live = box.config.databasePath;
    fs.copyFileSync(pristineDb, live);
    fs.writeFileSync(`${live}-wal`, wal);
    fs.rmSync(`${live}-shm`, { force: true });
    const header = parseWalHeader(wal.subarray(0, WAL_HEADER_SIZE))!;
    const start = startOf(header);
    const generation = catalog.wal.beginGeneration('test: a torn WAL', pageSize, start);
    catalog.wal.setSnapshot(generation.id, snapshot.id, snapshot.completed_at!);

    const stop = new AbortController();
    const gaps: string[] = [];
    let segments = 0;
    const archiver = new WalArchiver(
      { config: box.config, catalog, log: testLogger(box.config, 'wal-archiver') },
      {
        intervalMs: () => 200,
        signal: stop.signal,
        takeSnapshot: () => Promise.reject(new Error('the generation has its snapshot already')),
        onGap: (reason) => gaps.push(reason),
        onProgress: (p) => {
          segments = p.segments;
        },
      },
    );
    const running = archiver.run();
    try {
      await waitUntil('the archiver to ship a segment', () => segments >= 1 || catalog.wal.segments(generation.id).length >= 1, 15_000);
      // One more interval: nothing past the torn frame may follow.
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      stop.abort();
      await running;
    }
    expect(gaps).toEqual([]);
    return generation.id;
  }

  describe.each([
    ['cut in the middle of its last frame', cutMidFrame],
    ['with a flipped byte in its last frame', flippedLastFrame],
  ])('a -wal file %s', (_what, damage) => {
    it('scans to the commit before the damage and no further', () => {
      const wal = damage();
      const header = parseWalHeader(wal.subarray(0, WAL_HEADER_SIZE))!;
      const scan = scanFrames(wal, 0, startOf(header));
      expect(scan.commits).toBe(COMMITS - 1);
      expect(scan.end.offset).toBe(frameStart(previousCommitFrame + 1));
      // SQLite reads the same damaged file the same way.
      expect(sqliteReading(wal)).toEqual({ count: COMMITS - 1, max: COMMITS - 1, contiguous: true });
    });

    it('ships only the valid commits before it, and a replay gives exactly those', async () => {
      const id = await archiveDamagedWal(damage());
      const segments = catalog.wal.segments(id);
      expect(segments.length).toBeGreaterThanOrEqual(1);
      expect(segments[0]!.first_offset).toBe(WAL_HEADER_SIZE);
      expect(segments.at(-1)!.last_offset).toBe(frameStart(previousCommitFrame + 1));
      expect(segments.reduce((sum, s) => sum + s.commits, 0)).toBe(COMMITS - 1);
      expect(segments.reduce((sum, s) => sum + s.frames, 0)).toBe(previousCommitFrame + 1);
      for (const s of segments) expect(fs.existsSync(path.join(box.config.backupDir, 'wal', s.file_name)), s.file_name).toBe(true);

      const replayed = await replayGeneration(box.config, catalog, catalog.wal.generation(id)!);
      try {
        expect(replayed).toMatchObject({
          snapshotBackupId: snapshot.id,
          segmentsApplied: segments.length,
          restoredTo: segments.at(-1)!.read_at,
        });
        expect(stateOf(replayed.copy.path)).toEqual({
          events: { count: COMMITS - 1, max: COMMITS - 1, contiguous: true },
          balanceSum: BALANCE_TOTAL,
          integrity: 'ok',
        });
      } finally {
        await discard(replayed);
      }
    });
  });
});

const INTERVAL = 200;
const JOB_LOCK_DURATION = 2_000;
const STALLED_INTERVAL = 1_000;

/** Crashes the writer and waits until the archive holds all it committed (the open generation has its snapshot). */
async function crashWriter(catalog: Catalog, writer: WalWriter, file: string) {
  await writer.kill();
  const reported = writer.lastN();
  const committed = eventsOf(file).max;
  expect(committed).toBeGreaterThanOrEqual(reported);
  await sleep(2 * INTERVAL);
  const live = await archivingUnderWay(catalog, { segments: 0 });
  await sleep(2 * INTERVAL);
  expect(catalog.wal.openGeneration()?.id).toBe(live.id);
  return { reported, committed, live };
}

/** The restored database holds every event up to at least `reported`, none past `committed`, and adds up. */
function expectComplete(file: string, reported: number, committed: number): void {
  const state = stateOf(file);
  expect(state.integrity).toBe('ok');
  // As the application had it: archiving can go on only from a database in WAL mode.
  expect(query<{ journal_mode: string }>(file, 'PRAGMA journal_mode').journal_mode, 'the restored database is in WAL mode').toBe('wal');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous, JSON.stringify(state.events)).toBe(true);
  expect(state.events.max).toBeGreaterThanOrEqual(reported);
  expect(state.events.max).toBeLessThanOrEqual(committed);
}

describe('the archiving worker killed with SIGKILL while another runs', () => {
  let box: Sandbox;
  let hooks: WebhookReceiver;
  let catalog: Catalog;
  let producer: RunningProducer | undefined;

  beforeAll(async () => {
    hooks = await WebhookReceiver.start();
    box = sandbox('wal-kill', {
      WAL_ARCHIVE_ENABLED: 'true',
      WAL_ARCHIVE_INTERVAL: String(INTERVAL),
      JOB_LOCK_DURATION: String(JOB_LOCK_DURATION),
      STALLED_INTERVAL: String(STALLED_INTERVAL),
      ALERT_WEBHOOK_URL: hooks.url,
      REQUEST_TIMEOUT: '60000',
      MAX_BACKUPS: '50',
    });
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    addEventsTable(box.config.databasePath);
    catalog = openCatalog(box.config);
  });

  afterAll(async () => {
    catalog?.close();
    await producer?.close();
    await killAll();
    await hooks?.close();
    await box?.cleanup();
  });

  it('the other worker carries on; no silent gap, no segment recorded twice or half-written; the restore to latest is complete', async () => {
    const file = box.config.databasePath;
    const workers = [await startWorkerProcess(box.env), await startWorkerProcess(box.env)];
    const writer = await startWalWriter(file);
    const first = await archivingUnderWay(catalog, { segments: 5 });
    const archiving = await waitUntil('the archiving worker to be known', () => {
      const id = archiverState(catalog)?.workerId;
      return workers.find((w) => id?.endsWith(`:${w.child.pid}`));
    });
    const other = workers.find((w) => w !== archiving)!;

    // Killed in the middle of storing a segment when the moment can be caught, else at once.
    const walDir = path.join(box.config.backupDir, 'wal');
    await waitUntil(
      'a segment being written',
      () => fs.readdirSync(walDir).some((n) => isTempName(n) && n.includes(`-${archiving.child.pid}-`)),
      3_000,
      1,
    ).catch(() => undefined);
    const killedMs = Date.now();
    const killedAt = new Date(killedMs).toISOString();
    await archiving.kill();

    // The bound: another worker takes over within JOB_LOCK_DURATION + one interval.
    const bound = JOB_LOCK_DURATION + INTERVAL;
    const taken = await waitUntil(
      'the other worker to archive',
      () => {
        const state = archiverState(catalog);
        return state?.workerId.endsWith(`:${other.child.pid}`) && state.at > killedAt ? state : undefined;
      },
      bound + 10_000,
      20,
    );
    // From the SIGKILL to the other worker's first report of a sync (its own clock, same host).
    const tookMs = Date.parse(taken.at) - killedMs;
    await waitUntil(
      'a segment stored after the handover',
      () => catalog.wal.summary().some((g) => (g.last_read_at ?? '') > taken.at),
      10_000,
    );
    // Soft: the rest of the test (no gap, a complete restore) still reports when the handover was slow.
    expect.soft(tookMs, `took over after ${tookMs} ms`).toBeLessThanOrEqual(bound);

    await sleep(1_000);
    const { reported, committed, live } = await crashWriter(catalog, writer, file);
    expect(chainProblems(catalog)).toEqual([]);
    expect(await unreadableSegments(box.config, catalog)).toEqual([]);
    expect(unannouncedGenerations(catalog, hooks, first.id)).toEqual([]);

    producer = await startTestProducer(box.config);
    deleteDatabase(file);
    const res = await request(producer.server).post('/api/restores').set(auth).send({ to: 'latest' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      success: true,
      wal: { generation: live.id, snapshotBackupId: live.snapshot_backup_id, segmentsApplied: catalog.wal.segments(live.id).length },
    });
    expectComplete(file, reported, committed);
    if (live.id === first.id) expect(res.body.wal.segmentsApplied).toBeGreaterThan(5);
    await other.stop();
  });

  it('on SIGTERM the archiving worker hands the archiver over at once, with no silent gap', async () => {
    const file = box.config.databasePath;
    const workers = [await startWorkerProcess(box.env), await startWorkerProcess(box.env)];
    const writer = await startWalWriter(file);
    const before = catalog.wal.generations().at(-1)!.id;
    await archivingUnderWay(catalog, { after: before - 1, segments: 3 });
    const archiving = await waitUntil('the archiving worker to be known', () => {
      const id = archiverState(catalog)?.workerId;
      return workers.find((w) => id?.endsWith(`:${w.child.pid}`));
    });
    const successor = workers.find((w) => w !== archiving)!;

    const stoppedMs = Date.now();
    expect(await archiving.stop()).toBe(0);
    const taken = await waitUntil(
      'the other worker to archive',
      () => {
        const state = archiverState(catalog);
        return state?.workerId.endsWith(`:${successor.child.pid}`) && Date.parse(state.at) > stoppedMs ? state : undefined;
      },
      JOB_LOCK_DURATION + 10_000,
      20,
    );
    // At once: no waiting for the job's lock to run out, as after a SIGKILL; five intervals cover
    // the shutdown, the job's return to the queue and the first sync.
    const tookMs = Date.parse(taken.at) - stoppedMs;
    expect.soft(tookMs, `handed over after ${tookMs} ms`).toBeLessThanOrEqual(5 * INTERVAL);

    await sleep(1_000);
    await writer.kill();
    await sleep(2 * INTERVAL);
    expect(chainProblems(catalog)).toEqual([]);
    expect(await unreadableSegments(box.config, catalog)).toEqual([]);
    expect(unannouncedGenerations(catalog, hooks, before)).toEqual([]);
    await successor.stop();
  });
});

describe('Redis restarted empty while archiving', () => {
  let redis: PrivateRedis;
  let box: Sandbox;
  let hooks: WebhookReceiver;
  let catalog: Catalog;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    hooks = await WebhookReceiver.start();
    box = sandbox('wal-redis', {
      REDIS_URL: redis.url,
      WAL_ARCHIVE_ENABLED: 'true',
      WAL_ARCHIVE_INTERVAL: String(INTERVAL),
      JOB_LOCK_DURATION: String(JOB_LOCK_DURATION),
      STALLED_INTERVAL: String(STALLED_INTERVAL),
      ALERT_WEBHOOK_URL: hooks.url,
      MAX_BACKUPS: '50',
    });
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    addEventsTable(box.config.databasePath);
    catalog = openCatalog(box.config);
  });

  /** The state of the archiver's job (`wal-archiver` on the `wal` queue) in the private Redis. */
  async function archiverJobState(): Promise<string | undefined> {
    const queue = new Queue('wal', { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 }, prefix: box.prefix });
    queue.on('error', () => undefined);
    try {
      return await (await queue.getJob('wal-archiver'))?.getState();
    } finally {
      await queue.close();
    }
  }

  afterAll(async () => {
    catalog?.close();
    await killAll();
    await redis?.kill();
    await hooks?.close();
    await box?.cleanup();
  });

  it('archiving resumes; every segment recorded before stays, and the restore to latest is complete', async () => {
    const file = box.config.databasePath;
    const worker = await startWorkerProcess(box.env);
    const writer = await startWalWriter(file);
    const first = await archivingUnderWay(catalog, { segments: 5 });
    expect(await archiverJobState()).toBe('active');

    await redis.kill();
    await sleep(1_000);
    await redis.start();
    const restartedAt = new Date().toISOString();
    const recorded = catalog.wal.generations().flatMap((g) => catalog.wal.segments(g.id));

    // The archiver's job is back on its queue and running (visible on the board with its progress).
    // Soft: whether archiving itself went on and lost nothing is checked below either way.
    let jobState: string | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(200)) {
      jobState = await archiverJobState();
      if (jobState === 'active') break;
    }
    expect.soft(jobState ?? 'missing', 'the wal-archiver job 30 s after Redis came back empty').toBe('active');

    await waitUntil(
      'segments stored after Redis came back',
      () => catalog.wal.summary().some((g) => (g.last_read_at ?? '') > restartedAt),
      30_000,
    );
    await sleep(1_500);
    const { reported, committed, live } = await crashWriter(catalog, writer, file);
    const now = catalog.wal.generations().flatMap((g) => catalog.wal.segments(g.id));
    expect(now.slice(0, recorded.length)).toEqual(recorded);
    expect(chainProblems(catalog)).toEqual([]);
    expect(await unreadableSegments(box.config, catalog)).toEqual([]);
    expect(unannouncedGenerations(catalog, hooks, first.id)).toEqual([]);

    expect(await worker.stop()).toBe(0);
    deleteDatabase(file);
    const r = await runCli({ ...box.env, REDIS_URL: REDIS_DOWN }, 'restore', '--to', 'latest', '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      restore: { status: 'completed' },
      wal: { generation: live.id, snapshotBackupId: live.snapshot_backup_id, segmentsApplied: catalog.wal.segments(live.id).length },
    });
    expectComplete(file, reported, committed);
  });
});
