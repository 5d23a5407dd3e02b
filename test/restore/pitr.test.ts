/**
 * Point-in-time restore: the application writes time-stamped rows and transfers while the WAL
 * archive runs; a restore to a moment T in the middle gives the database as of the last archived
 * sync at or before T, through the API and through the CLI with the service and Redis down. Then
 * the timelines: a moment after T on the old timeline, and back to latest. `--output` leaves the
 * live database byte for byte. Targets outside the window are refused with the window named, and
 * the window the API and the CLI show is the catalog's, gaps shown as gaps. Real worker process,
 * real Redis, a writer in a process of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WalGenerationRow } from '../../src/shared/catalog/catalog-schema.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/env.js';
import { sha256 } from '../helpers/faults.js';
import { startWorkerProcess } from '../helpers/processes.js';
import { auth } from '../helpers/producer.js';
import {
  archivingUnderWay,
  BALANCE_TOTAL,
  chainProblems,
  deleteDatabase,
  sleep,
  startWalWriter,
  stateOf,
  unreadableSegments,
} from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';
import { query } from '../helpers/workstation-db.js';

const INTERVAL = 200;

const stack = useWalStack('pitr', INTERVAL, { MAX_BACKUPS: '50' });

const db = () => stack.box.config.databasePath;
const offline = () => ({ ...stack.box.env, REDIS_URL: REDIS_DOWN });

interface Event {
  n: number;
  at: string;
}

function eventRows(file: string): Event[] {
  const conn = new Database(file, { readonly: true });
  try {
    return conn.prepare('SELECT n, at FROM events ORDER BY n').all() as Event[];
  } finally {
    conn.close();
  }
}

/** The same instant written with another offset (minutes east of UTC), as a person in another zone types it. */
function withOffset(iso: string, minutes: number): string {
  const local = new Date(Date.parse(iso) + minutes * 60_000).toISOString().slice(0, -1);
  const abs = Math.abs(minutes);
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local}${minutes < 0 ? '-' : '+'}${hhmm}`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Waits until a generation's segments hold at least `commits` commits: everything written is archived. */
function archived(generationId: number, commits: number) {
  return waitUntil(
    `generation ${generationId} to hold ${commits} commits`,
    () => stack.catalog.wal.segments(generationId).reduce((sum, s) => sum + s.commits, 0) >= commits,
    20_000,
  );
}

/** The segments of a generation read at or before a moment: what a restore to it replays. */
const segmentsUpTo = (generationId: number, at: string) =>
  stack.catalog.wal.segments(generationId).filter((s) => Date.parse(s.read_at) <= Date.parse(at));

/** The old timeline: every row the writer committed before the first restore, in order. */
let timeline: Event[];
let oldGeneration: WalGenerationRow;
/** The moment in the middle of the old timeline, in UTC. */
let T: string;
/** What the API restore to T reported: the CLI restore to T must give the same. */
let apiRestoredTo: string;
/** The generation archiving began on the state restored to T. */
let generationOnT: WalGenerationRow;

/**
 * The database is the old timeline as of `target`: its own rows (same numbers, same stamps), none
 * stamped after the target or after the sync it was restored to, every row stamped two intervals
 * before the target, the balances adding up, integrity_check passing, WAL mode as the application
 * had it.
 */
function expectAsOf(file: string, target: string, restoredTo: string): void {
  const state = stateOf(file);
  expect(state.integrity).toBe('ok');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous, JSON.stringify(state.events)).toBe(true);
  expect(query<{ journal_mode: string }>(file, 'PRAGMA journal_mode').journal_mode).toBe('wal');
  const rows = eventRows(file);
  expect(rows, 'the old timeline rows, stamps and all').toEqual(timeline.slice(0, rows.length));
  const newest = rows.at(-1)?.at ?? '';
  expect(newest <= target, `the newest row restored is stamped ${newest}, after the target ${target}`).toBe(true);
  expect(newest <= restoredTo, `the newest row restored is stamped ${newest}, after the sync it was restored to (${restoredTo})`).toBe(
    true,
  );
  const due = timeline.filter((e) => Date.parse(e.at) <= Date.parse(target) - 2 * INTERVAL).at(-1)!;
  expect(
    rows.length,
    `row ${due.n} (stamped ${due.at}, two intervals before ${target}) is missing; the restore ends at ${newest}`,
  ).toBeGreaterThanOrEqual(due.n);
}

/** The recovery window as the API shows it now. */
async function apiWindow() {
  const res = await request(stack.producer.server).get('/api/recovery-window').set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as {
    success: boolean;
    enabled: boolean;
    earliest: string;
    latest: string;
    lagSeconds: number | null;
    generations: { id: number; start: string; end: string; reason: string }[];
    gaps: { from: string; to: string; reason: string }[];
  };
}

/**
 * The message names the window: its earliest moment, and its end as it was when the target was
 * refused (between the ends seen just before and just after; the running generation's end moves).
 */
function expectNamesWindow(message: string, before: { earliest: string; latest: string }, after: { latest: string }): void {
  const named = /the recovery window is (\S+) to (\S+?)\.?$/.exec(message);
  expect(named, message).not.toBeNull();
  expect(named![1]).toBe(before.earliest);
  const [lo, hi] = [before.latest, after.latest].sort();
  expect(named![2]! >= lo! && named![2]! <= hi!, `${message} names an end outside ${lo} to ${hi}`).toBe(true);
}

/** The stretches between consecutive generations of a window, each with the reason the later one began. */
const gapsOf = (generations: { start: string; end: string; reason: string }[]) =>
  generations.slice(1).map((g, i) => ({ from: generations[i]!.end, to: g.start, reason: g.reason }));

const restoreCount = () => query<{ c: number }>(stack.box.config.catalogPath, 'SELECT count(*) AS c FROM restore_log').c;

/**
 * What the catalog says the window is: every generation whose snapshot backup completed, from
 * when its snapshot was covered to its last stored commit, with its segments and their bytes.
 */
function catalogWindow() {
  return stack.catalog.wal
    .generations()
    .filter(
      (g) =>
        g.snapshot_backup_id !== null && g.snapshot_at !== null && stack.catalog.getBackup(g.snapshot_backup_id)?.status === 'completed',
    )
    .map((g) => {
      const segments = stack.catalog.wal.segments(g.id);
      return {
        id: g.id,
        start: g.snapshot_at!,
        // Its last segment, or for a generation that ended, its last sync point (kept as last_read_at).
        end: [segments.at(-1)?.read_at, g.last_read_at, g.snapshot_at!]
          .filter((t): t is string => Boolean(t))
          .sort()
          .at(-1)!,
        snapshotBackupId: g.snapshot_backup_id!,
        segments: segments.length,
        bytes: segments.reduce((sum, s) => sum + s.size_bytes, 0),
        startedAt: g.started_at,
        endedAt: g.ended_at,
        reason: g.reason,
      };
    });
}

/**
 * A window shown by the API or the CLI is the catalog's: the same generations with the same
 * fields; a closed generation ends at its last stored commit, the running one there or at the
 * archiver's last sync point since; earliest and latest are the first start and the last end; a
 * gap between each two generations, from one's end to the next one's start, with the reason the
 * next one began.
 */
function expectCatalogWindow(shown: {
  earliest: string;
  latest: string;
  generations: { id: number; start: string; end: string; reason: string }[];
  gaps?: { from: string; to: string; reason: string }[];
}): void {
  const expected = catalogWindow();
  expect(shown.generations.map((g) => g.id)).toEqual(expected.map((g) => g.id));
  const open = stack.catalog.wal.openGeneration();
  for (const [i, g] of expected.entries()) {
    const got = shown.generations[i]!;
    if (g.id === open?.id) {
      expect(got).toMatchObject({ ...g, end: expect.any(String) });
      expect(got.end >= g.end && got.end <= new Date().toISOString(), `the running generation ends at ${got.end}`).toBe(true);
    } else {
      expect(got).toMatchObject(g);
    }
  }
  expect(shown.earliest).toBe(expected[0]!.start);
  expect(shown.latest).toBe(shown.generations.at(-1)!.end);
  if (shown.gaps) expect(shown.gaps).toEqual(gapsOf(shown.generations));
}

describe('restore to a moment, through the API', () => {
  beforeAll(async () => {
    oldGeneration = await archivingUnderWay(stack.catalog, { segments: 0 });
    const writer = await startWalWriter(db());
    await sleep(4_000);
    const { lastN, errors } = await writer.stop();
    expect(errors).toBe(0);
    await archived(oldGeneration.id, lastN);
    expect(stack.catalog.wal.openGeneration()?.id, 'no gap while the writer ran').toBe(oldGeneration.id);
    timeline = eventRows(db());
    expect(timeline.length).toBe(lastN);
    expect(lastN).toBeGreaterThan(300);
    T = iso((Date.parse(timeline[0]!.at) + Date.parse(timeline.at(-1)!.at)) / 2);
  });

  it('to T (given with a +02:00 offset): nothing stamped after T, everything two intervals before it, balances adding up, integrity_check passing', async () => {
    const res = await request(stack.producer.server)
      .post('/api/restores')
      .set(auth)
      .send({ to: withOffset(T, 120) });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const replayed = segmentsUpTo(oldGeneration.id, T);
    expect(replayed.length).toBeGreaterThan(0);
    expect(res.body).toMatchObject({
      success: true,
      restore: { status: 'completed' },
      wal: {
        generation: oldGeneration.id,
        snapshotBackupId: oldGeneration.snapshot_backup_id,
        segmentsApplied: replayed.length,
        restoredTo: replayed.at(-1)!.read_at,
      },
      restoredTo: replayed.at(-1)!.read_at,
    });
    expectAsOf(db(), T, res.body.restoredTo);
    // Rows after T existed on the old timeline: the restore took them back.
    expect(eventRows(db()).length).toBeLessThan(timeline.length);
    apiRestoredTo = res.body.restoredTo;
  });

  it('then to a moment after T on the old timeline (its last archived sync): every row the writer committed is back', async () => {
    expect(apiRestoredTo, 'the restore to T ran').toBeDefined();
    const old = stack.catalog.wal.generation(oldGeneration.id)!;
    expect(old.ended_at, 'the restore ended the generation it restored from').not.toBeNull();
    const end = stack.catalog.wal.segments(old.id).at(-1)!.read_at;
    expect(end > T).toBe(true);
    // The restore to T began a new generation; the old timeline is reached through the old one.
    generationOnT = await waitUntil(
      'a generation on the state restored to T',
      () => stack.catalog.wal.generations().find((g) => g.id > old.id),
      30_000,
    );
    expect(generationOnT.reason).toMatch(/restore/i);

    const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: end });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      restore: { status: 'completed' },
      wal: { generation: old.id, segmentsApplied: stack.catalog.wal.segments(old.id).length, restoredTo: end },
      restoredTo: end,
    });
    expectAsOf(db(), end, end);
    expect(eventRows(db())).toEqual(timeline);
  });

  it('and back to latest: the timeline the last restore began, with what was written on it since', async () => {
    expect(generationOnT, 'the restore to a moment after T ran').toBeDefined();
    // The generation begun by the last restore, once it has its snapshot: `latest` replays it.
    const current = await archivingUnderWay(stack.catalog, { after: generationOnT.id, segments: 0 });
    expect(current.reason).toMatch(/restore/i);
    expect(stack.catalog.wal.generation(generationOnT.id)!.ended_at, 'the restore ended the generation on T').not.toBeNull();
    const restoredAt = current.started_at;
    const writer = await startWalWriter(db());
    await sleep(1_500);
    const { lastN, errors } = await writer.stop();
    expect(errors).toBe(0);
    expect(lastN).toBeGreaterThan(timeline.length + 100);
    await archived(current.id, lastN - timeline.length);
    expect(stack.catalog.wal.openGeneration()?.id, 'no gap while the writer ran').toBe(current.id);
    const live = eventRows(db());
    // The database files are gone: only the archive can bring this timeline back.
    deleteDatabase(db());

    const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: 'latest' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      restore: { status: 'completed' },
      wal: { generation: current.id, segmentsApplied: stack.catalog.wal.segments(current.id).length },
    });
    const state = stateOf(db());
    expect(state.integrity).toBe('ok');
    expect(state.balanceSum).toBe(BALANCE_TOTAL);
    const rows = eventRows(db());
    expect(rows).toEqual(live);
    expect(rows.length).toBe(lastN);
    expect(rows.slice(0, timeline.length)).toEqual(timeline);
    // The rows past the old timeline were written on the new one, after the restores.
    expect(rows[timeline.length]!.at > restoredAt, `${rows[timeline.length]!.at} is after ${restoredAt}`).toBe(true);
    expect(chainProblems(stack.catalog)).toEqual([]);
    expect(await unreadableSegments(stack.box.config, stack.catalog)).toEqual([]);
  });

  it('refuses a target before the window, after it or in a gap with a 422 naming the window, and a malformed one with a 400; nothing is restored', async () => {
    const restores = restoreCount();
    const window = await apiWindow();
    expect(window.gaps.length, JSON.stringify(window)).toBeGreaterThan(0);
    const gap = window.gaps[0]!;
    expect(gap.from < gap.to, JSON.stringify(gap)).toBe(true);
    const targets = {
      before: iso(Date.parse(window.earliest) - 3_600_000),
      after: iso(Date.now() + 3_600_000),
      gap: iso((Date.parse(gap.from) + Date.parse(gap.to)) / 2),
    };
    for (const [where, to] of Object.entries(targets)) {
      const before = await apiWindow();
      const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to });
      const after = await apiWindow();
      expect(res.status, `${where}: ${JSON.stringify(res.body)}`).toBe(422);
      expect(res.body).toMatchObject({ success: false, error: { code: 'outside_recovery_window' } });
      const message = String(res.body.error.message);
      expect(message).toContain(to);
      expect(message).toMatch(
        where === 'gap' ? /in a gap/ : where === 'before' ? /before the recovery window/ : /after the recovery window/,
      );
      if (where === 'gap') expect(message).toContain(`between ${gap.from} and ${gap.to}`);
      expectNamesWindow(message, before, after);
    }
    for (const to of [
      '2026-11-25 12:00:00Z',
      '2026-11-25T12:00:00',
      'yesterday',
      '2026-13-01T12:00:00Z',
      '2026-02-30T12:00:00Z',
      1764072000000,
    ]) {
      const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to });
      expect(res.status, `${JSON.stringify(to)}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body).toMatchObject({ success: false, error: { code: 'invalid_body', message: expect.stringMatching(/ISO-8601/) } });
    }
    expect(restoreCount(), 'no restore was begun').toBe(restores);
  });

  it('shows the window the catalog holds, each restore followed by a gap', async () => {
    const window = await apiWindow();
    expect(window).toMatchObject({ success: true, enabled: true, lagSeconds: expect.any(Number) });
    expectCatalogWindow(window);
    expect(window.generations[0]!.id).toBe(oldGeneration.id);
    expect(window.gaps.length).toBeGreaterThanOrEqual(1);
    for (const gap of window.gaps) {
      expect(gap.reason).toMatch(/restore/i);
      expect(gap.from < gap.to, JSON.stringify(gap)).toBe(true);
    }
  });
});

describe('with the service down and Redis unreachable, through the CLI', () => {
  beforeAll(async () => {
    expect(await stack.worker.stop()).toBe(0);
  });

  it('restore --to T --yes: the old timeline as of T again, across the generations since', async () => {
    expect(apiRestoredTo, 'the API restore to T ran').toBeDefined();
    const r = await runCli(offline(), 'restore', '--to', withOffset(T, -330), '--yes', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const replayed = segmentsUpTo(oldGeneration.id, T);
    expect(r.json).toMatchObject({
      success: true,
      restore: { status: 'completed' },
      wal: {
        generation: oldGeneration.id,
        snapshotBackupId: oldGeneration.snapshot_backup_id,
        segmentsApplied: replayed.length,
        restoredTo: apiRestoredTo,
      },
      restoredTo: apiRestoredTo,
    });
    expectAsOf(db(), T, apiRestoredTo);
    expect(eventRows(db()).length).toBeLessThan(timeline.length);
  });

  it('restore --to <time> --output FILE: the past in a new file; the live database and its -wal stay byte for byte; an existing FILE is refused', async () => {
    // The application holds the database open with commits not yet checkpointed: a -wal with frames.
    const app = new Database(db());
    try {
      app.pragma('wal_autocheckpoint = 0');
      app.exec("CREATE TABLE IF NOT EXISTS note (v TEXT); INSERT INTO note VALUES ('after the restore')");
      const wal = `${db()}-wal`;
      expect(fs.statSync(wal).size).toBeGreaterThan(32);
      const before = { db: sha256(db()), wal: sha256(wal), mtime: fs.statSync(db()).mtimeMs };

      const end = stack.catalog.wal.segments(oldGeneration.id).at(-1)!.read_at;
      const output = path.join(stack.box.dir, 'old-timeline-end.db');
      const r = await runCli(offline(), 'restore', '--to', end, '--output', output, '--json');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json).toMatchObject({
        success: true,
        output,
        restoredTo: end,
        wal: { generation: oldGeneration.id, segmentsApplied: stack.catalog.wal.segments(oldGeneration.id).length, restoredTo: end },
      });
      expect({ db: sha256(db()), wal: sha256(wal), mtime: fs.statSync(db()).mtimeMs }, 'the live database was not touched').toEqual(before);
      expectAsOf(output, end, end);
      expect(eventRows(output)).toEqual(timeline);
      expect(fs.readdirSync(stack.box.dir).filter((f) => f.includes('.partial-'))).toEqual([]);

      const written = sha256(output);
      const again = await runCli(offline(), 'restore', '--to', T, '--output', output, '--json');
      expect(again.code, again.stdout + again.stderr).toBe(2);
      expect(again.json).toMatchObject({ success: false, error: { message: expect.stringMatching(/exists/) } });
      expect(sha256(output), 'the existing file was left as it was').toBe(written);
      expect({ db: sha256(db()), wal: sha256(wal), mtime: fs.statSync(db()).mtimeMs }).toEqual(before);
      expect(app.prepare('SELECT v FROM note').pluck().all()).toEqual(['after the restore']);
    } finally {
      app.close();
    }
  });

  it('refuses a target before the window, after it or in a gap (exit 2, the window named) and a malformed one (exit 2); nothing is restored', async () => {
    const restores = restoreCount();
    const live = sha256(db());
    const window = await apiWindow();
    const gap = window.gaps[0]!;
    const targets = {
      before: iso(Date.parse(window.earliest) - 3_600_000),
      after: iso(Date.now() + 3_600_000),
      gap: iso((Date.parse(gap.from) + Date.parse(gap.to)) / 2),
    };
    for (const [where, to] of Object.entries(targets)) {
      const before = await apiWindow();
      const r = await runCli(offline(), 'restore', '--to', to, '--yes', '--json');
      const after = await apiWindow();
      expect(r.code, `${where}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json).toMatchObject({ success: false, error: { code: 'outside_recovery_window' } });
      const message = String(r.json.error.message);
      expect(message).toContain(to);
      expect(message).toMatch(
        where === 'gap' ? /in a gap/ : where === 'before' ? /before the recovery window/ : /after the recovery window/,
      );
      expectNamesWindow(message, before, after);
    }
    // As a person reads it: on stderr, the window named; --output refuses the same way.
    const human = await runCli(offline(), 'restore', '--to', targets.before, '--yes');
    expect(human.code).toBe(2);
    expect(human.stderr).toMatch(/before the recovery window: the recovery window is \S+ to \S+/);
    const output = path.join(stack.box.dir, 'never.db');
    const past = await runCli(offline(), 'restore', '--to', targets.after, '--output', output, '--json');
    expect(past.code, past.stdout + past.stderr).toBe(2);
    expect(past.json).toMatchObject({
      error: { code: 'outside_recovery_window', message: expect.stringMatching(/after the recovery window/) },
    });
    expect(fs.existsSync(output)).toBe(false);

    for (const to of ['2026-11-25 12:00:00Z', '2026-11-25T12:00:00', 'yesterday', '2026-13-01T12:00:00Z', '2026-02-30T12:00:00Z']) {
      const r = await runCli(offline(), 'restore', '--to', to, '--yes', '--json');
      expect(r.code, `${to}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.json, to).toMatchObject({ success: false, error: { code: 'bad_request', message: expect.stringMatching(/ISO-8601/) } });
    }
    expect(restoreCount(), 'no restore was begun').toBe(restores);
    expect(sha256(db())).toBe(live);
  });

  it("window --json is the catalog's window, the same as the API's; the text shows each gap", async () => {
    const api = await apiWindow();
    const r = await runCli(offline(), 'window', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ success: true, enabled: true });
    expectCatalogWindow(r.json);
    expect(r.json.generations).toEqual(api.generations);
    // The CLI shows the gaps as the stretches between its generations: the API's gaps.
    expect(gapsOf(r.json.generations)).toEqual(api.gaps);
    expect({ earliest: r.json.earliest, latest: r.json.latest }).toEqual({ earliest: api.earliest, latest: api.latest });

    const text = await runCli(offline(), 'window');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`Recovery window: ${api.earliest} to ${api.latest}`);
    for (const gap of api.gaps) expect(text.stdout).toContain(`gap ${gap.from} to ${gap.to}: ${gap.reason}`);
    for (const g of api.generations) expect(text.stdout).toContain(`generation ${g.id}: ${g.start} to ${g.end}`);
  });
});

describe('the application truncating its own WAL while it is archived', () => {
  beforeAll(async () => {
    stack.worker = await startWorkerProcess(stack.box.env);
  });

  it('wal_checkpoint(TRUNCATE) run by the application shows as a gap in the API and the CLI, with the reason', async () => {
    const before = await archivingUnderWay(stack.catalog, { after: stack.catalog.wal.generations().at(-1)!.id - 1, segments: 0 });
    const writer = await startWalWriter(db(), { checkpoint: { mode: 'TRUNCATE', every: 100 } });
    const truncated = await waitUntil(
      'a new generation after the application truncated the WAL',
      () => stack.catalog.wal.generations().find((g) => g.id > before.id),
      30_000,
    );
    expect(truncated.reason).toMatch(/reset|truncat/i);
    expect((await writer.stop()).errors).toBe(0);
    // The generation archiving goes on in once the application stopped truncating, with its snapshot.
    const after = await archivingUnderWay(stack.catalog, { after: before.id, segments: 0 });
    expect(after.reason).toMatch(/reset|truncat/i);

    const window = await apiWindow();
    expectCatalogWindow(window);
    const at = window.generations.findIndex((g) => g.id === after.id);
    expect(at, JSON.stringify(window.generations)).toBeGreaterThan(0);
    expect(window.generations[at - 1]!.id).toBeGreaterThanOrEqual(before.id);
    const gap = window.gaps[at - 1];
    expect(gap).toEqual({
      from: window.generations[at - 1]!.end,
      to: stack.catalog.wal.generation(after.id)!.snapshot_at,
      reason: after.reason,
    });
    expect(gap!.from < gap!.to).toBe(true);
    const r = await runCli(offline(), 'window', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(gapsOf(r.json.generations)).toContainEqual(gap);
    const text = await runCli(offline(), 'window');
    expect(text.stdout).toContain(`gap ${gap!.from} to ${gap!.to}: ${gap!.reason}`);
    // A moment in it is refused with the window named.
    const inGap = iso((Date.parse(gap!.from) + Date.parse(gap!.to)) / 2);
    const res = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: inGap });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.error.message).toContain(`${inGap} falls in a gap of the WAL archive, between ${gap!.from} and ${gap!.to}`);
    expect(chainProblems(stack.catalog)).toEqual([]);
  });
});
