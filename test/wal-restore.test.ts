/**
 * The disaster the WAL archive is for: the application writes every 5 ms, crashes (SIGKILL), and
 * its database, `-wal` and `-shm` are gone. A restore to the latest point brings back every
 * commit it reported, through the API and then through the CLI with the service and Redis down.
 * Real worker process, real Redis, a writer in a process of its own.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../src/producer/server.js';
import type { Catalog } from '../src/shared/catalog/catalog.js';
import { REDIS_DOWN, runCli } from './helpers/cli.js';
import { sandbox, type Sandbox } from './helpers/env.js';
import { killAll, startWorkerProcess, type Proc } from './helpers/processes.js';
import { auth, openCatalog, startTestProducer } from './helpers/producer.js';
import { WebhookReceiver } from './helpers/webhook.js';
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
} from './helpers/wal-writer.js';
import { createWorkstationDb } from './helpers/workstation-db.js';

const INTERVAL = 200;

let box: Sandbox;
let hooks: WebhookReceiver;
let worker: Proc;
let producer: RunningProducer;
let catalog: Catalog;

beforeAll(async () => {
  hooks = await WebhookReceiver.start();
  box = sandbox('wal-restore', {
    WAL_ARCHIVE_ENABLED: 'true',
    WAL_ARCHIVE_INTERVAL: String(INTERVAL),
    ALERT_WEBHOOK_URL: hooks.url,
    REQUEST_TIMEOUT: '60000',
    MAX_BACKUPS: '50',
  });
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  addEventsTable(box.config.databasePath);
  worker = await startWorkerProcess(box.env);
  producer = await startTestProducer(box.config);
  catalog = openCatalog(box.config);
});

afterAll(async () => {
  catalog?.close();
  await producer?.close();
  await worker?.stop();
  await killAll();
  await hooks?.close();
  await box?.cleanup();
});

const db = () => box.config.databasePath;

/**
 * Writes for a while with archiving under way, crashes the writer, and waits two intervals.
 * Returns the last n the writer reported, what the live database held after the crash, and the
 * generation being archived.
 */
async function writeThenCrash(after: number) {
  const writer = await startWalWriter(db());
  const generation = await archivingUnderWay(catalog, { after });
  await sleep(2_000);
  await writer.kill();
  const reported = writer.lastN();
  const committed = eventsOf(db());
  expect(committed.max).toBeGreaterThanOrEqual(reported);
  expect(reported).toBeGreaterThan(200);
  await sleep(2 * INTERVAL);
  expect(catalog.wal.openGeneration()?.id, 'no gap while the writer ran').toBe(generation.id);
  return { reported, committed, generation };
}

/** The restored database holds every event up to at least `reported`, none beyond what was committed, and adds up. */
function expectRestored(reported: number, committed: number): void {
  const state = stateOf(db());
  expect(state.integrity).toBe('ok');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous, JSON.stringify(state.events)).toBe(true);
  expect(state.events.max).toBeGreaterThanOrEqual(reported);
  expect(state.events.max).toBeLessThanOrEqual(committed);
}

let apiGeneration: number;

describe('restore to latest after the application crashed and its database files were deleted', () => {
  it('through the API: every row the writer reported committed is back, the balances add up, integrity_check passes', async () => {
    const { reported, committed, generation } = await writeThenCrash(0);
    deleteDatabase(db());

    const res = await request(producer.server).post('/api/restores').set(auth).send({ to: 'latest' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const segments = catalog.wal.segments(generation.id);
    expect(res.body).toMatchObject({
      success: true,
      restore: { status: 'completed' },
      wal: {
        generation: generation.id,
        snapshotBackupId: generation.snapshot_backup_id,
        segmentsApplied: segments.length,
        restoredTo: segments.at(-1)!.read_at,
      },
    });
    expectRestored(reported, committed.max);
    expect(chainProblems(catalog)).toEqual([]);
    apiGeneration = generation.id;
  });

  it('through the CLI with the worker stopped and Redis unreachable, after archiving went on from the restored state', async () => {
    expect(apiGeneration, 'the API restore ran').toBeGreaterThan(0);
    // The archive continues on the restored database as a new generation.
    const { reported, committed, generation } = await writeThenCrash(apiGeneration);
    expect(catalog.wal.generation(apiGeneration)?.ended_at).not.toBeNull();
    expect(await worker.stop()).toBe(0);
    const segments = catalog.wal.segments(generation.id);
    deleteDatabase(db());

    const r = await runCli({ ...box.env, REDIS_URL: REDIS_DOWN }, 'restore', '--to', 'latest', '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      restore: { status: 'completed' },
      wal: {
        generation: generation.id,
        snapshotBackupId: generation.snapshot_backup_id,
        segmentsApplied: segments.length,
        restoredTo: segments.at(-1)!.read_at,
      },
    });
    expectRestored(reported, committed.max);
    expect(chainProblems(catalog)).toEqual([]);
  });
});
