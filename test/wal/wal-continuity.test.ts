/**
 * Continuity of the WAL archive against what an application (not ours: Python's sqlite3, SQLite
 * 3.40, in a process of its own) may do. Each case either continues the generation with proof, or
 * ends it and begins a new one with a `wal.gap` alert; a restore to latest from the archive alone
 * then holds every commit, and a restore to any generation's first moment is a state the
 * application committed (the balance sum is the same in every one).
 * - its own `wal_checkpoint(TRUNCATE)` right after a transaction held longer than the interval;
 * - the database file replaced under it (`mv new.db app.db`, -wal and -shm removed, reopened);
 * - commits while the archiver is down, by an application that then closes (its close checkpoints
 *   and deletes -wal), and a `journal_mode=DELETE` and back meanwhile.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { startWorkerProcess } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import {
  archivingUnderWay,
  BALANCE_TOTAL,
  chainProblems,
  sleep,
  startWalWriter,
  stateOf,
  unannouncedGenerations,
} from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';

const INTERVAL = 150;
const stack = useWalStack('wal-continuity', INTERVAL, { MAX_BACKUPS: '100' });

const db = () => stack.box.config.databasePath;
const offline = () => ({ ...stack.box.env, REDIS_URL: REDIS_DOWN });
let outputs = 0;

/** Restores `to` (latest or a moment) into a new file with the CLI, Redis down; returns the file. */
async function restoreToFile(to: string): Promise<string> {
  const output = path.join(stack.box.dir, `restored-${++outputs}.db`);
  const run = await runCli(offline(), 'restore', '--to', to, '--output', output, '--json');
  expect(run.code, `restore --to ${to}: ${run.stderr}`).toBe(0);
  return output;
}

/** Every event in a restored file was committed at or before `to`, and none is missing before the last. */
function expectCommittedState(file: string, to?: string): ReturnType<typeof stateOf> {
  const state = stateOf(file);
  expect(state.integrity).toBe('ok');
  expect(state.balanceSum, `a state the application never committed (restored to ${to ?? 'latest'})`).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous).toBe(true);
  if (to) {
    const conn = new Database(file, { readonly: true });
    const late = conn.prepare('SELECT count(*) AS c FROM events WHERE at > ?').get(to) as { c: number };
    conn.close();
    expect(late.c, `events after ${to}`).toBe(0);
  }
  return state;
}

/** The archive after a case: no broken chain, every new generation announced, latest holds `lastN`. */
async function expectWholeArchive(lastN: number, after: number): Promise<void> {
  expect(chainProblems(stack.catalog)).toEqual([]);
  expect(unannouncedGenerations(stack.catalog, stack.hooks, after)).toEqual([]);
  const latest = expectCommittedState(await restoreToFile('latest'));
  expect(latest.events.max).toBe(lastN);
}

/** The window as the API shows it. */
async function window(): Promise<{ generations: { id: number; start: string; end: string; reason: string }[]; gaps: unknown[] }> {
  const res = await request(stack.producer.server).get('/api/recovery-window').set(auth);
  expect(res.status).toBe(200);
  return res.body.data ?? res.body;
}

/** Waits until the archive has a generation newer than `after` with its snapshot covered: the gap is behind it. */
async function settled(after: number): Promise<number> {
  const g = await archivingUnderWay(stack.catalog, { after, segments: 0, timeoutMs: 60_000 });
  await sleep(4 * INTERVAL);
  return g.id;
}

describe('the WAL archive proves continuity or says it cannot', () => {
  it("the application's own wal_checkpoint(TRUNCATE) after transactions held longer than the interval: every commit archived, every new generation announced, every generation's first moment a committed state", async () => {
    const first = await settled(0);
    const writer = await startWalWriter(db(), {
      build: 'python',
      everyMs: 5,
      seconds: 6,
      holdMs: 3 * INTERVAL,
      holdEvery: 60,
      checkpoint: { mode: 'TRUNCATE', afterHold: true },
    });
    const summary = await writer.finished;
    expect(summary.checkpoints.done + summary.checkpoints.busy).toBeGreaterThanOrEqual(2);
    const newest = await settled(stack.catalog.wal.generations().at(-1)!.id - 1);
    expect(newest).toBeGreaterThanOrEqual(first);
    await sleep(4 * INTERVAL);
    await expectWholeArchive(summary.lastN, first);

    // Restoring to the first moment of each generation gives a state that was committed then.
    for (const g of (await window()).generations) {
      expectCommittedState(await restoreToFile(g.start), g.start);
    }
  }, 180_000);

  it('the database file replaced under the archiver: a new generation from the new file, announced', async () => {
    const before = stack.catalog.wal.generations().at(-1)!.id;
    const writer = await startWalWriter(db(), { build: 'python', everyMs: 5, seconds: 2 });
    await writer.finished;
    // The application writes its database anew and swaps it in, as a migration tool would.
    const fresh = `${db()}.new`;
    execFileSync('python3', [
      '-c',
      `import sqlite3; d = sqlite3.connect(${JSON.stringify(db())}); d.execute("VACUUM INTO '${fresh}'"); d.close()`,
    ]);
    fs.renameSync(fresh, db());
    fs.rmSync(`${db()}-wal`, { force: true });
    fs.rmSync(`${db()}-shm`, { force: true });
    const again = await startWalWriter(db(), { build: 'python', everyMs: 5, seconds: 2 });
    const { lastN } = await again.finished;
    const next = await settled(before);
    expect(stack.catalog.wal.generation(next)!.reason).toMatch(/replaced|deleted|salts/);
    await expectWholeArchive(lastN, before);
  }, 120_000);

  it('commits while the archiver is down, by an application that closes (and a journal_mode=DELETE and back): a new generation, announced; nothing after them lost', async () => {
    const before = stack.catalog.wal.generations().at(-1)!.id;
    await sleep(3 * INTERVAL);
    await stack.worker.stop();
    const down = await startWalWriter(db(), { build: 'python', everyMs: 5, seconds: 1.5 });
    await down.finished;
    execFileSync('python3', [
      '-c',
      [
        'import sqlite3, datetime',
        `d = sqlite3.connect(${JSON.stringify(db())}, isolation_level=None)`,
        'd.execute("PRAGMA journal_mode=DELETE")',
        'n = d.execute("SELECT max(n) FROM events").fetchone()[0]',
        'd.execute("INSERT INTO events (n, at) VALUES (?, ?)", (n + 1, datetime.datetime.now(datetime.timezone.utc).isoformat()))',
        'd.execute("PRAGMA journal_mode=WAL")',
        'd.execute("INSERT INTO events (n, at) VALUES (?, ?)", (n + 2, datetime.datetime.now(datetime.timezone.utc).isoformat()))',
        'd.close()',
      ].join('\n'),
    ]);
    expect(fs.existsSync(`${db()}-wal`)).toBe(false);
    stack.worker = await startWorkerProcess(stack.box.env);
    const next = await settled(before);
    expect(next).toBeGreaterThan(before);
    const after = await startWalWriter(db(), { build: 'python', everyMs: 5, seconds: 2 });
    const { lastN } = await after.finished;
    await sleep(4 * INTERVAL);
    await expectWholeArchive(lastN, before);
    expect((await window()).gaps.length).toBeGreaterThan(0);
  }, 120_000);

  it('restore --to latest says when the archive has a gap after what it restored (a newer generation without a snapshot)', async () => {
    await stack.worker.stop();
    const covered = stack.catalog.wal.generations().at(-1)!;
    // What the archiver records when it finds a gap: first the generation ends at it…
    stack.catalog.wal.endGeneration(covered.id, 'gap: the -wal file was deleted');
    const ended = await runCli(offline(), 'restore', '--to', 'latest', '--output', path.join(stack.box.dir, 'at-gap.db'), '--json');
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.json.wal.gapAfter).toMatchObject({ generation: null, reason: 'the -wal file was deleted' });
    // …then the next generation begins, before its snapshot.
    const next = stack.catalog.wal.beginGeneration('the -wal file was deleted', covered.page_size, null);
    const output = path.join(stack.box.dir, 'latest-before-gap.db');
    const json = await runCli(offline(), 'restore', '--to', 'latest', '--output', output, '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(json.json.wal).toMatchObject({ generation: covered.id, gapAfter: { generation: next.id, reason: 'the -wal file was deleted' } });
    const text = await runCli(offline(), 'restore', '--to', 'latest', '--output', `${output}.2`);
    expect(text.stdout).toContain(`the WAL archive has a gap after this moment: generation ${next.id} began ${next.started_at}`);
  }, 60_000);
});
