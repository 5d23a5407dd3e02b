/**
 * The WAL archive under what the application does to its own WAL (a TRUNCATE checkpoint, its
 * autocheckpoint) and under a restore: never a silent gap, every new generation announced by a
 * `wal.gap` alert that says why, and a restore to latest that is complete afterwards. Real worker
 * process, real Redis, a writer in a process of its own.
 */
import fs from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { sha256 } from '../helpers/faults.js';
import { startWorkerProcess, type Proc } from '../helpers/processes.js';
import { auth, openCatalog, startTestProducer } from '../helpers/producer.js';
import {
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
import { useWalStack } from '../helpers/wal-stack.js';
import { createWorkstationDb, query } from '../helpers/workstation-db.js';

const INTERVAL = 200;

const stack = useWalStack('wal-archive', INTERVAL, { MAX_BACKUPS: '100' });

const db = () => stack.box.config.databasePath;
const newestGeneration = () => stack.catalog.wal.generations().at(-1)!;
const gapAlerts = () => stack.hooks.of('wal.gap');

/**
 * Crashes the writer, waits for the open generation to have its snapshot and two intervals more,
 * deletes the database files and restores to latest through the API: every event the writer
 * reported is back, none that was not committed, and the database adds up.
 */
async function crashDeleteAndRestore(writer: WalWriter): Promise<number> {
  await writer.kill();
  const reported = writer.lastN();
  const committed = eventsOf(db()).max;
  expect(committed).toBeGreaterThanOrEqual(reported);
  await sleep(2 * INTERVAL);
  const live = await archivingUnderWay(stack.catalog, { segments: 0 });
  await sleep(2 * INTERVAL);
  expect(stack.catalog.wal.openGeneration()?.id).toBe(live.id);
  deleteDatabase(db());

  const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: 'latest' });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body).toMatchObject({
    success: true,
    restore: { status: 'completed' },
    wal: { generation: live.id, snapshotBackupId: live.snapshot_backup_id, segmentsApplied: stack.catalog.wal.segments(live.id).length },
  });
  const state = stateOf(db());
  expect(state.integrity).toBe('ok');
  // As the application had it: archiving can go on only from a database in WAL mode.
  expect(query<{ journal_mode: string }>(db(), 'PRAGMA journal_mode').journal_mode, 'the restored database is in WAL mode').toBe('wal');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous, JSON.stringify(state.events)).toBe(true);
  expect(state.events.max).toBeGreaterThanOrEqual(reported);
  expect(state.events.max).toBeLessThanOrEqual(committed);
  // The archive goes on from the restored database, and says so.
  const next = await waitUntil(
    'a new generation on the restored database',
    () => stack.catalog.wal.generations().find((g) => g.id > live.id),
    30_000,
  );
  expect(next.reason).toMatch(/restore/i);
  await waitUntil('its wal.gap alert', () =>
    gapAlerts().find((d) => d.body.reason === next.reason && String(d.body.at) >= next.started_at),
  );
  return live.id;
}

describe('the application checkpoints its own WAL while it is archived', () => {
  it('wal_checkpoint(TRUNCATE) run by the application: a new generation announced by a wal.gap alert, and the restore to latest is complete', async () => {
    const first = await archivingUnderWay(stack.catalog, { segments: 0 });
    const writer = await startWalWriter(db(), { checkpoint: { mode: 'TRUNCATE', every: 100 } });
    const gapped = await waitUntil(
      'a new generation after the application truncated the WAL',
      () => stack.catalog.wal.generations().find((g) => g.id > first.id),
      30_000,
    );
    expect(gapped.reason).toMatch(/reset|truncat/i);
    expect(stack.catalog.wal.generation(first.id)!.ended_at).not.toBeNull();
    await waitUntil('the wal.gap alert saying why', () => gapAlerts().find((d) => d.body.reason === gapped.reason));
    await sleep(1_000);
    // Stopped rather than killed here, to read how many of its TRUNCATE checkpoints went through.
    const summary = await writer.stop();
    expect(summary.checkpoints.done, JSON.stringify(summary)).toBeGreaterThan(0);
    // The last stretch of writing comes after a crash.
    const crashing = await startWalWriter(db(), { checkpoint: { mode: 'TRUNCATE', every: 100 } });
    await sleep(1_500);
    await crashDeleteAndRestore(crashing);
    expect(unannouncedGenerations(stack.catalog, stack.hooks, first.id)).toEqual([]);
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);
  });

  it('its own wal_autocheckpoint: no silent gap (any new generation is announced), and the restore to latest is complete', async () => {
    const start = await archivingUnderWay(stack.catalog, { after: newestGeneration().id - 1, segments: 0 });
    const writer = await startWalWriter(db(), { autocheckpoint: 50 });
    await archivingUnderWay(stack.catalog, { after: start.id - 1, segments: 5 });
    await sleep(3_000);
    await crashDeleteAndRestore(writer);
    expect(unannouncedGenerations(stack.catalog, stack.hooks, start.id)).toEqual([]);
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);
  });
});

describe('a restore while archiving', () => {
  it('ends the generation; archiving goes on from the restored state as a new generation whose reason is the restore', async () => {
    const before = await archivingUnderWay(stack.catalog, { after: newestGeneration().id - 1, segments: 0 });
    const first = await startWalWriter(db());
    await sleep(1_000);
    const atBackup = (await first.stop()).lastN;
    const backup = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(backup.status, JSON.stringify(backup.body)).toBe(201);
    // Later writes the restore will take back.
    const later = await startWalWriter(db());
    await sleep(1_000);
    expect((await later.stop()).lastN).toBeGreaterThan(atBackup);
    await sleep(2 * INTERVAL);
    const alertsBefore = gapAlerts().length;

    const ending = stack.catalog.wal.openGeneration()!;
    const restoredAt = new Date().toISOString();
    const res = await request(stack.producer.server).post(`/api/backups/${backup.body.backup.id}/restore`).set(auth);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(eventsOf(db())).toEqual({ count: atBackup, max: atBackup, contiguous: true });

    const after = await waitUntil(
      'a new generation on the restored database',
      () => stack.catalog.wal.generations().find((g) => g.id > ending.id),
      30_000,
    );
    expect(after.reason).toMatch(/restore/i);
    expect(stack.catalog.wal.generation(ending.id)).toMatchObject({
      ended_at: expect.any(String),
      end_reason: expect.stringMatching(/restore/i),
    });
    await waitUntil('the wal.gap alert naming the restore', () =>
      gapAlerts()
        .slice(alertsBefore)
        .find((d) => /restore/i.test(String(d.body.reason))),
    );

    // The archive follows the restored database: a restore to latest gives it plus what was written since.
    const writer = await startWalWriter(db());
    await archivingUnderWay(stack.catalog, { after: before.id, segments: 3 });
    const health = await request(stack.producer.server).get('/health').set(auth);
    expect(health.body.wal).toMatchObject({
      enabled: true,
      generation: stack.catalog.wal.openGeneration()!.id,
      lagSeconds: expect.any(Number),
      segments: expect.any(Number),
      lastGap: expect.objectContaining({ reason: expect.stringMatching(/restore/i) }),
    });
    await sleep(1_000);
    const generation = await crashDeleteAndRestore(writer);
    expect(generation).toBeGreaterThan(before.id);
    const rewritten = stateOf(db());
    expect(rewritten.events.max).toBeGreaterThan(atBackup);
    // The events past the backup are the ones written after the restore, not the ones it took back.
    const earliest = query<{ at: string }>(db(), 'SELECT min(at) AS at FROM events WHERE n > ?', atBackup).at;
    expect(earliest >= restoredAt, `${earliest} is after ${restoredAt}`).toBe(true);
    expect(unannouncedGenerations(stack.catalog, stack.hooks, before.id)).toEqual([]);
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);
  });
});

describe('a database not in WAL mode', () => {
  let off: Sandbox;
  let offWorker: Proc;
  let offProducer: RunningProducer;
  let offCatalog: Catalog;

  beforeAll(async () => {
    off = sandbox('wal-off', { WAL_ARCHIVE_ENABLED: 'true', WAL_ARCHIVE_INTERVAL: String(INTERVAL) });
    createWorkstationDb(off.config.databasePath, { sizeMb: 0.2, wal: false });
    offWorker = await startWorkerProcess(off.env);
    offProducer = await startTestProducer(off.config);
    offCatalog = openCatalog(off.config);
  });

  afterAll(async () => {
    offCatalog?.close();
    await offProducer?.close();
    await offWorker?.stop();
    await off?.cleanup();
  });

  it('is left as it is, and /health says in one sentence that archiving needs WAL mode', async () => {
    const file = off.config.databasePath;
    const before = sha256(file);
    const res = await waitUntil('/health to name the journal mode as the problem', async () => {
      const r = await request(offProducer.server).get('/health').set(auth);
      return (r.body.problems as string[] | undefined)?.some((p) => /WAL mode/.test(p)) ? r : undefined;
    });
    expect((res.body.problems as string[]).filter((p) => /WAL mode/.test(p))).toHaveLength(1);
    expect(res.body.wal).toMatchObject({ enabled: true });
    await sleep(5 * INTERVAL);
    expect(query<{ journal_mode: string }>(file, 'PRAGMA journal_mode').journal_mode).toBe('delete');
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(sha256(file)).toBe(before);
    expect(offCatalog.wal.generations()).toEqual([]);
  });
});
