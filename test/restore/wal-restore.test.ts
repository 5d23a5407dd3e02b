/**
 * The disaster the WAL archive is for: the application writes every 5 ms, crashes (SIGKILL), and
 * its database, `-wal` and `-shm` are gone. A restore to the latest point brings back every
 * commit it reported, through the API and then through the CLI with the service and Redis down.
 * Real worker process, real Redis, a writer in a process of its own.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
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
  unreadableSegments,
} from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';
import { createWorkstationDb, query } from '../helpers/workstation-db.js';

const INTERVAL = 200;

const stack = useWalStack('wal-restore', INTERVAL, { MAX_BACKUPS: '50' });

const db = () => stack.box.config.databasePath;

/**
 * Writes for a while with archiving under way, crashes the writer, and waits two intervals.
 * Returns the last n the writer reported, what the live database held after the crash, and the
 * generation being archived.
 */
async function writeThenCrash(after: number) {
  const writer = await startWalWriter(db());
  const generation = await archivingUnderWay(stack.catalog, { after });
  await sleep(2_000);
  await writer.kill();
  const reported = writer.lastN();
  const committed = eventsOf(db());
  expect(committed.max).toBeGreaterThanOrEqual(reported);
  expect(reported).toBeGreaterThan(200);
  await sleep(2 * INTERVAL);
  expect(stack.catalog.wal.openGeneration()?.id, 'no gap while the writer ran').toBe(generation.id);
  return { reported, committed, generation };
}

/** The restored database holds every event up to at least `reported`, none beyond what was committed, and adds up. */
function expectRestored(reported: number, committed: number): void {
  const state = stateOf(db());
  expect(state.integrity).toBe('ok');
  // As the application had it: archiving can go on only from a database in WAL mode.
  expect(query<{ journal_mode: string }>(db(), 'PRAGMA journal_mode').journal_mode, 'the restored database is in WAL mode').toBe('wal');
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

    const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: 'latest' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const segments = stack.catalog.wal.segments(generation.id);
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
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);
    apiGeneration = generation.id;
  });

  it('through the CLI with the worker stopped and Redis unreachable, after archiving went on from the restored state', async () => {
    expect(apiGeneration, 'the API restore ran').toBeGreaterThan(0);
    // The archive continues on the restored database as a new generation.
    const { reported, committed, generation } = await writeThenCrash(apiGeneration);
    expect(stack.catalog.wal.generation(apiGeneration)?.ended_at).not.toBeNull();
    expect(await stack.worker.stop()).toBe(0);
    const segments = stack.catalog.wal.segments(generation.id);
    deleteDatabase(db());

    const r = await runCli({ ...stack.box.env, REDIS_URL: REDIS_DOWN }, 'restore', '--to', 'latest', '--yes', '--json');
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
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);

    // The restore ran while no archiver did: the worker that comes back does not carry the old
    // generation on over the restored database, it begins a new one that says why.
    stack.worker = await startWorkerProcess(stack.box.env);
    const next = await waitUntil(
      'a generation after the CLI restore',
      () => stack.catalog.wal.generations().find((g) => g.id > generation.id),
      20_000,
    );
    expect(next.reason).toBe('a restore ran');
    expect(stack.catalog.wal.generation(generation.id)?.ended_at).not.toBeNull();
  });
});

describe('restore to latest of a database that is gone', () => {
  let gone: Sandbox;
  let goneWorker: Proc;
  let goneProducer: RunningProducer;
  let goneCatalog: Catalog;

  beforeAll(async () => {
    gone = sandbox('wal-gone', { WAL_ARCHIVE_ENABLED: 'true', WAL_ARCHIVE_INTERVAL: String(INTERVAL), REQUEST_TIMEOUT: '60000' });
    createWorkstationDb(gone.config.databasePath, { sizeMb: 0.2 });
    goneWorker = await startWorkerProcess(gone.env);
    goneProducer = await startTestProducer(gone.config);
    goneCatalog = openCatalog(gone.config);
  });

  afterAll(async () => {
    goneCatalog?.close();
    await goneProducer?.close();
    await goneWorker?.stop();
    await gone?.cleanup();
  });

  it('leaves it in WAL mode, as the application had it, so that archiving goes on from it', async () => {
    const file = gone.config.databasePath;
    const generation = await archivingUnderWay(goneCatalog, { segments: 0 });
    // Transfers only: the database does not grow, so no archived frame holds page 1 (whose header
    // says WAL); what the restore writes must be in WAL mode all the same.
    const app = new Database(file);
    try {
      app.pragma('busy_timeout = 5000');
      for (let i = 1; i <= 5; i++) {
        app.prepare('UPDATE accounts SET balance = balance - ? WHERE id = 1').run(i);
        app.prepare('UPDATE accounts SET balance = balance + ? WHERE id = 2').run(i);
      }
    } finally {
      app.close();
    }
    await waitUntil('the transfers archived', () => goneCatalog.wal.segments(generation.id).reduce((n, s) => n + s.commits, 0) >= 10);
    const balances = query<{ a: number; b: number }>(
      file,
      'SELECT (SELECT balance FROM accounts WHERE id = 1) AS a, (SELECT balance FROM accounts WHERE id = 2) AS b',
    );
    await sleep(2 * INTERVAL);
    deleteDatabase(file);

    const res = await request(goneProducer.server).post('/api/restores').set(auth).send({ to: 'latest' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.wal).toMatchObject({ generation: generation.id, segmentsApplied: goneCatalog.wal.segments(generation.id).length });
    expect(
      query(file, 'SELECT (SELECT balance FROM accounts WHERE id = 1) AS a, (SELECT balance FROM accounts WHERE id = 2) AS b'),
    ).toEqual(balances);
    expect(query<{ journal_mode: string }>(file, 'PRAGMA journal_mode').journal_mode, 'the restored database is in WAL mode').toBe('wal');
    const next = await waitUntil(
      'archiving to go on from the restored database',
      () => goneCatalog.wal.generations().find((g) => g.id > generation.id && g.snapshot_backup_id !== null),
      20_000,
    );
    expect(next.reason).toMatch(/restore/i);
  });
});
