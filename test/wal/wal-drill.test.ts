/**
 * Restore drills (issue 14, part 4): on RESTORE_DRILL_SCHEDULE, a drill restores the WAL archive's
 * latest point and a random moment of the window into temp files, checks them, compares row
 * counts with the live database, and records the result, which `/health`, `/metrics` and the CLI
 * show; a drill whose snapshot file was damaged on purpose fails, says why, and alerts
 * `drill.failed`. Real worker process, real Redis, the application's writer in its own process.
 */
import fs from 'node:fs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { RestoreDrillRow, WalGenerationRow, WalSegmentRow } from '../../src/shared/catalog/catalog.js';
import { RESTORE_DRILL_SCHEDULER } from '../../src/shared/jobs/scheduler.js';
import { runCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { parseExposition } from '../helpers/prometheus.js';
import { archivingUnderWay, eventsOf, sleep, startWalWriter } from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';

const INTERVAL = 200;

const stack = useWalStack('wal-drill', INTERVAL);

interface Target {
  kind: 'latest' | 'random';
  at: string | null;
  ok: boolean;
  generation: number | null;
  restoredTo: string | null;
  segmentsApplied: number;
  durationMs: number;
  integrity: string | null;
  rowCounts?: { compared: boolean; note: string | null; differences: unknown[] };
  reason: string | null;
}

const targetsOf = (row: RestoreDrillRow) => JSON.parse(row.targets) as Target[];

/** Turns the schedule on (a milliseconds schedule fires at once) and waits for the drill it runs; turns it off again. */
async function scheduledDrill(after: number): Promise<RestoreDrillRow> {
  const put = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ restoreDrillSchedule: '60000' });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  expect(put.body.config).toMatchObject({ restoreDrillSchedule: '60000', nextScheduledDrill: expect.any(String) });
  expect(await stack.producer.deps.queues.verify.getJobScheduler(RESTORE_DRILL_SCHEDULER)).toMatchObject({ every: 60000 });
  const row = await waitUntil(
    'a scheduled drill recorded',
    () => stack.catalog.drills.drills(5).find((d) => d.id > after && d.trigger === 'scheduled'),
    60_000,
  );
  const off = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ restoreDrillSchedule: 'off' });
  expect(off.status).toBe(200);
  expect(off.body.config).toMatchObject({ restoreDrillSchedule: 'off', nextScheduledDrill: null });
  expect(await stack.producer.deps.queues.verify.getJobScheduler(RESTORE_DRILL_SCHEDULER)).toBeUndefined();
  return row;
}

async function metrics() {
  const res = await request(stack.producer.server).get('/metrics').set(auth);
  expect(res.status).toBe(200);
  return parseExposition(res.text);
}

const leftovers = () => fs.readdirSync(stack.box.config.backupDir).filter((n) => n.startsWith('.tmp-'));

let generation: WalGenerationRow;
let segments: WalSegmentRow[];
let passed: RestoreDrillRow;

describe('restore drills on RESTORE_DRILL_SCHEDULE', () => {
  it('restores the latest point and a random moment into temp files, checks them and records the result', async () => {
    const writer = await startWalWriter(stack.box.config.databasePath);
    generation = await archivingUnderWay(stack.catalog, { segments: 5 });
    await sleep(1_000);
    await writer.stop();
    await sleep(3 * INTERVAL);
    segments = stack.catalog.wal.segments(generation.id);
    const live = eventsOf(stack.box.config.databasePath);

    passed = await scheduledDrill(0);
    const [latest, random] = targetsOf(passed);
    expect(passed.ok, passed.reason ?? '').toBe(1);
    expect(passed.reason).toBeNull();
    expect(latest).toMatchObject({
      kind: 'latest',
      at: null,
      ok: true,
      generation: generation.id,
      restoredTo: segments.at(-1)!.read_at,
      segmentsApplied: segments.length,
      integrity: 'ok',
      // The writer had stopped and the archive held everything: the same moment as the live database.
      rowCounts: { compared: true, note: null, differences: [] },
    });
    expect(latest!.durationMs).toBeGreaterThan(0);
    expect(passed.duration_ms).toBe(latest!.durationMs);
    expect(random).toMatchObject({ kind: 'random', ok: true, generation: generation.id, integrity: 'ok' });
    // Drawn from the window: from the snapshot to the archiver's last sync point when it was drawn.
    expect(random!.at! >= generation.snapshot_at! && random!.at! <= passed.completed_at, `${random!.at} in the window`).toBe(true);
    expect(random!.restoredTo === null || random!.restoredTo <= random!.at!).toBe(true);
    // Only temp files, removed afterwards; the live database was only read.
    expect(leftovers()).toEqual([]);
    expect(eventsOf(stack.box.config.databasePath)).toEqual(live);

    const health = await request(stack.producer.server).get('/health').set(auth);
    expect(health.body.drills).toEqual({ last: { at: passed.completed_at, ok: true, durationMs: passed.duration_ms, reason: null } });

    const m = await metrics();
    expect(m.value('workstation_backup_restore_drill_last_ok')).toBe(1);
    expect(m.value('workstation_backup_restore_drill_last_success_timestamp_seconds')).toBe(Date.parse(passed.completed_at) / 1_000);
    expect(m.value('workstation_backup_restore_drill_last_duration_seconds')).toBe(passed.duration_ms / 1_000);

    const w = await runCli(stack.box.env, 'window', '--json');
    expect(w.code, w.stderr).toBe(0);
    expect(w.json.lastDrill).toMatchObject({ id: passed.id, ok: true, durationMs: passed.duration_ms, trigger: 'scheduled' });
    const text = await runCli(stack.box.env, 'window');
    expect(text.stdout).toContain(`Restore drill ${passed.id} (${passed.completed_at}): PASSED`);
    expect(stack.hooks.of('drill.failed')).toEqual([]);
  });

  it('a drill whose snapshot file was damaged fails, records why, and alerts drill.failed', async () => {
    expect(passed, 'the first test ran').toBeDefined();
    const snapshot = stack.catalog.getBackup(generation.snapshot_backup_id!)!;
    const bytes = fs.readFileSync(snapshot.file_path);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i]! ^= 0xff;
    fs.writeFileSync(snapshot.file_path, bytes);

    const failed = await scheduledDrill(passed.id);
    expect(failed.ok).toBe(0);
    const [latest, random] = targetsOf(failed);
    expect(latest).toMatchObject({ kind: 'latest', ok: false });
    expect(latest!.reason).toContain(`backup ${snapshot.id}`);
    expect(latest!.reason).toMatch(/failed verification/);
    expect(random).toMatchObject({ kind: 'random', ok: false });
    expect(failed.reason).toContain(latest!.reason!);
    expect(leftovers()).toEqual([]);

    const alert = await waitUntil('a drill.failed alert', () => stack.hooks.of('drill.failed')[0]);
    expect(alert.body).toMatchObject({ event: 'drill.failed', reason: failed.reason, queue: 'verify' });
    expect(alert.body.summary).toContain(`restore drill ${failed.id} failed`);

    const health = await request(stack.producer.server).get('/health').set(auth);
    expect(health.body.status).toBe('degraded');
    expect(health.body.problems).toContain(`the last restore drill (${failed.completed_at}) failed: ${failed.reason}`);
    expect(health.body.drills.last).toEqual({ at: failed.completed_at, ok: false, durationMs: failed.duration_ms, reason: failed.reason });

    const m = await metrics();
    expect(m.value('workstation_backup_restore_drill_last_ok')).toBe(0);
    // The last success is still the earlier drill's.
    expect(m.value('workstation_backup_restore_drill_last_success_timestamp_seconds')).toBe(Date.parse(passed.completed_at) / 1_000);
  });

  it('the scheduled verification (VERIFY_SCHEDULE) verifies the archive too: a generation whose snapshot fails leaves the window', async () => {
    expect(generation, 'the first test ran').toBeDefined();
    const since = new Date().toISOString();
    const put = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: '60000' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const row = await waitUntil(
      'the archive verified by the sweep',
      () => stack.catalog.drills.archiveVerifications().find((v) => v.generation_id === generation.id && v.verified_at >= since),
      30_000,
    );
    expect((await request(stack.producer.server).put('/api/backups/config').set(auth).send({ verifySchedule: 'off' })).status).toBe(200);
    expect(row).toMatchObject({ ok: 0, snapshot_ok: 0, bad_seq: null });
    expect(row.reason).toContain(`backup ${generation.snapshot_backup_id}`);

    const window = await request(stack.producer.server).get('/api/recovery-window').set(auth);
    expect((window.body.generations as { id: number }[]).map((g) => g.id)).not.toContain(generation.id);
    const alert = await waitUntil('a verify.invalid alert for the snapshot', () =>
      stack.hooks.of('verify.invalid').find((d) => String(d.body.summary).includes(`snapshot of WAL generation ${generation.id}`)),
    );
    expect(alert.body).toMatchObject({ backupId: generation.snapshot_backup_id, reason: row.reason });
  });
});
