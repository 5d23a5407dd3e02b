/**
 * Verification of the WAL archive (issue 14, part 3): a segment damaged or deleted in the middle
 * of a chain is named by the verification, raises `verify.invalid`, and shrinks the advertised
 * recovery window to the last good segment before it; a restore to a moment past it is refused;
 * a drill after the gap still succeeds from the next generation. Real worker process, real Redis,
 * the application's writer in a process of its own.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, WalGenerationRow, WalSegmentRow } from '../../src/shared/catalog/catalog.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { segmentsInPack } from '../helpers/packs.js';
import { startWorkerProcess, type Proc } from '../helpers/processes.js';
import { auth, openCatalog } from '../helpers/producer.js';
import { addEventsTable, archivingUnderWay, BALANCE_TOTAL, sleep, startWalWriter, stateOf } from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const INTERVAL = 200;

const stack = useWalStack('wal-verify', INTERVAL, { MAX_BACKUPS: '50' });

const db = () => stack.box.config.databasePath;
const segmentFile = (s: WalSegmentRow) => path.join(stack.box.config.backupDir, 'wal', s.file_name);

interface ShownGeneration {
  id: number;
  start: string;
  end: string;
  verification: { ok: boolean; firstBadSeq: number | null; firstBadFile: string | null; reason: string | null } | null;
}

async function apiWindow() {
  const res = await request(stack.producer.server).get('/api/recovery-window').set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { earliest: string; latest: string; generations: ShownGeneration[]; gaps: { from: string; to: string }[] };
}

/** Writes for a while with archiving under way, stops the writer and lets the archiver catch up; returns the generation's segments. */
async function writeAWhile(after: number, segments: number): Promise<{ generation: WalGenerationRow; segments: WalSegmentRow[] }> {
  const writer = await startWalWriter(db());
  const generation = await archivingUnderWay(stack.catalog, { after, segments });
  await sleep(1_000);
  await writer.stop();
  await sleep(3 * INTERVAL);
  return { generation, segments: stack.catalog.wal.segments(generation.id) };
}

let first: { generation: WalGenerationRow; segments: WalSegmentRow[] };
let damaged: WalSegmentRow;
let lastGood: WalSegmentRow;

describe('a segment damaged in the middle of a chain', () => {
  it('is named by POST /api/recovery-window/verify, raises verify.invalid, and the window ends at the last good segment before it', async () => {
    first = await writeAWhile(0, 8);
    const { generation, segments } = first;
    expect(segments.length).toBeGreaterThanOrEqual(8);
    const index = Math.floor(segments.length / 2);
    damaged = segments[index]!;
    lastGood = segments[index - 1]!;

    const before = await apiWindow();
    expect(before.generations.find((g) => g.id === generation.id)!.end >= segments.at(-1)!.read_at).toBe(true);

    // One byte flipped in the middle of the stored file.
    const bytes = fs.readFileSync(segmentFile(damaged));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    fs.writeFileSync(segmentFile(damaged), bytes);

    const res = await request(stack.producer.server).post('/api/recovery-window/verify').set(auth).send({});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.valid).toBe(false);
    const outcome = (res.body.generations as { generation: number }[]).find((g) => g.generation === generation.id);
    expect(outcome).toMatchObject({
      ok: false,
      segmentsChecked: index + 1,
      snapshot: { backupId: generation.snapshot_backup_id, ok: true },
      firstBad: { seq: damaged.seq, file: damaged.file_name },
    });
    expect((outcome as unknown as { firstBad: { reason: string } }).firstBad.reason).toContain('checksum mismatch');

    // Recorded in the catalog.
    expect(stack.catalog.drills.archiveVerifications().find((v) => v.generation_id === generation.id)).toMatchObject({
      ok: 0,
      snapshot_ok: 1,
      bad_seq: damaged.seq,
      bad_file: damaged.file_name,
    });

    // The window ends at the last good segment before the damaged one.
    const after = await apiWindow();
    const shown = after.generations.find((g) => g.id === generation.id)!;
    expect(shown.end).toBe(lastGood.read_at);
    expect(after.latest).toBe(lastGood.read_at);
    expect(shown.verification).toMatchObject({ ok: false, firstBadSeq: damaged.seq, firstBadFile: damaged.file_name });
    expect(res.body.latest).toBe(lastGood.read_at);

    const alert = await waitUntil('a verify.invalid alert naming the segment', () =>
      stack.hooks.of('verify.invalid').find((d) => String(d.body.summary).includes(damaged.file_name)),
    );
    expect(alert.body.reason).toContain(damaged.file_name);
    expect(alert.body.summary).toContain(`generation ${generation.id}`);

    // A moment past the last good segment is refused, naming the shrunk window.
    const past = await request(stack.producer.server)
      .post('/api/restores')
      .set(auth)
      .send({ to: segments.at(-1)!.read_at });
    expect(past.status, JSON.stringify(past.body)).toBe(422);
    expect(past.body.error.code).toBe('outside_recovery_window');
    expect(past.body.error.message).toContain(`to ${lastGood.read_at}`);
  });

  it('a drill after the gap still succeeds from the next generation', async () => {
    expect(lastGood, 'the first test ran').toBeDefined();
    // The way back: a restore to the last good moment, after which archiving goes on as a new generation.
    const restored = await request(stack.producer.server).post('/api/restores').set(auth).send({ to: lastGood.read_at });
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    expect(restored.body.restoredTo).toBe(lastGood.read_at);
    const state = stateOf(db());
    expect(state.integrity).toBe('ok');
    expect(state.balanceSum).toBe(BALANCE_TOTAL);
    expect(state.events.contiguous).toBe(true);

    const next = await writeAWhile(first.generation.id, 4);
    const window = await apiWindow();
    expect(window.generations.map((g) => g.id)).toEqual([first.generation.id, next.generation.id]);
    expect(window.gaps).toHaveLength(1);
    expect(window.gaps[0]!.from).toBe(lastGood.read_at);

    const res = await request(stack.producer.server).post('/api/recovery-window/drill').set(auth).send({});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const drill = res.body.drill as {
      id: number;
      ok: boolean;
      reason: string | null;
      targets: { kind: string; ok: boolean; at: string | null; generation: number; integrity: string; rowCounts?: unknown }[];
    };
    expect(drill.ok, drill.reason ?? '').toBe(true);
    expect(drill.targets[0]).toMatchObject({
      kind: 'latest',
      ok: true,
      generation: next.generation.id,
      restoredTo: next.segments.at(-1)!.read_at,
      segmentsApplied: next.segments.length,
      integrity: 'ok',
      rowCounts: { compared: true, differences: [] },
    });
    const random = drill.targets[1]!;
    expect(random).toMatchObject({ kind: 'random', ok: true, integrity: 'ok' });
    // Drawn from the advertised window (the running generation's end has only moved on since), never past the damaged segment.
    const reach = (await apiWindow()).generations.find((g) => g.start <= random.at! && random.at! <= g.end);
    expect(reach, `${random.at} lies in the window`).toBeDefined();
    expect(random.generation).toBe(reach!.id);
    if (reach!.id === first.generation.id) expect(random.at! <= lastGood.read_at).toBe(true);
    expect(stack.catalog.drills.lastDrill()).toMatchObject({ id: drill.id, ok: 1, trigger: 'api' });
    expect(stack.hooks.of('drill.failed')).toEqual([]);
  });
});

describe('a segment deleted in the middle of a chain, through the CLI with the service down', () => {
  it('drill --verify names it; the window shrinks; the latest point fails honestly and a moment in the window restores', async () => {
    const newest = stack.catalog.wal.generations().at(-1)!;
    const segments = stack.catalog.wal.segments(newest.id);
    expect(segments.length).toBeGreaterThanOrEqual(4);
    expect(await stack.worker.stop()).toBe(0);
    const index = Math.floor(segments.length / 2);
    const gone = segments[index]!;
    fs.rmSync(segmentFile(gone));

    const env = { ...stack.box.env, REDIS_URL: REDIS_DOWN };
    const r = await runCli(env, 'drill', '--verify', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const verified = (r.json.verification.generations as { generation: number }[]).find((g) => g.generation === newest.id);
    expect(verified).toMatchObject({ ok: false, firstBad: { seq: gone.seq, file: gone.file_name } });
    expect((verified as unknown as { firstBad: { reason: string } }).firstBad.reason).toMatch(/ENOENT|no such file/i);
    // The older generation is still broken where it was.
    expect((r.json.verification.generations as { generation: number }[]).find((g) => g.generation === first.generation.id)).toMatchObject({
      ok: false,
      firstBad: { seq: damaged.seq },
    });

    const [latest, random] = r.json.drill.targets as { kind: string; ok: boolean; reason: string | null; at: string }[];
    expect(latest).toMatchObject({ kind: 'latest', ok: false });
    expect(latest!.reason).toContain(gone.file_name);
    expect(random).toMatchObject({ kind: 'random', ok: true, integrity: 'ok' });
    expect(r.json.drill.ok).toBe(false);
    // The CLI alerts as a scheduled drill does.
    const alert = await waitUntil('a drill.failed alert from the CLI', () => stack.hooks.of('drill.failed')[0]);
    expect(alert.body).toMatchObject({
      event: 'drill.failed',
      reason: r.json.drill.reason,
      data: { drill: r.json.drill.id, trigger: 'cli' },
    });

    const w = await runCli(env, 'window', '--json');
    expect(w.code, w.stderr).toBe(0);
    const shown = (w.json.generations as ShownGeneration[]).find((g) => g.id === newest.id)!;
    expect(shown.end).toBe(segments[index - 1]!.read_at);
    expect(random!.at <= shown.end).toBe(true);
    expect(w.json.lastDrill).toMatchObject({ id: r.json.drill.id, ok: false });

    const text = await runCli(env, 'window');
    expect(text.stdout).toContain(`verification`);
    expect(text.stdout).toContain(gone.file_name);
    expect(text.stdout).toMatch(/Restore drill \d+ .*FAILED/);
  });
});

describe('an encrypted archive with a mirror', () => {
  let mbox: Sandbox;
  let mworker: Proc;
  let mcatalog: Catalog;
  let env: Record<string, string>;

  beforeAll(async () => {
    mbox = sandbox('wal-verify-mirror', {
      WAL_ARCHIVE_ENABLED: 'true',
      WAL_ARCHIVE_INTERVAL: String(INTERVAL),
      BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    });
    env = mbox.with({ BACKUP_MIRROR_DIR: path.join(mbox.dir, 'mirror') }).env;
    const { config } = mbox.with(env);
    createWorkstationDb(config.databasePath, { sizeMb: 0.5 });
    addEventsTable(config.databasePath);
    mworker = await startWorkerProcess(env);
    mcatalog = openCatalog(config);
  });

  afterAll(async () => {
    mcatalog?.close();
    await mworker?.stop();
    await mbox?.cleanup();
  });

  it('reads a segment whose primary copy is damaged from the mirror, and names it once both copies are', async () => {
    const { config } = mbox.with(env);
    const writer = await startWalWriter(config.databasePath);
    const generation = await archivingUnderWay(mcatalog, { segments: 4 });
    await writer.stop();
    const segments = await waitUntil('every segment copied to the mirror', () => {
      const all = mcatalog.wal.segments(generation.id);
      return all.every((s) => s.mirrored === 1) ? all : undefined;
    });
    expect(segments.every((s) => s.encryption !== null)).toBe(true);
    const target = segments[1]!;
    const flip = (file: string) => {
      const bytes = fs.readFileSync(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      fs.writeFileSync(file, bytes);
    };

    flip(path.join(config.backupDir, 'wal', target.file_name));
    const fromMirror = await runCli(env, 'drill', '--verify', '--json');
    const saved = (fromMirror.json.verification.generations as { generation: number }[]).find((g) => g.generation === generation.id);
    expect(saved, fromMirror.stdout + fromMirror.stderr).toMatchObject({ ok: true, readFromMirror: [target.file_name], firstBad: null });
    // The drill replays through the mirror's copy too.
    expect(fromMirror.json.drill.targets[0], fromMirror.stdout).toMatchObject({ kind: 'latest', ok: true, integrity: 'ok' });

    // Its bytes inside the pack that holds it in the mirror.
    const pack = mcatalog.walBucket.packOf(target.generation_id, target.seq)!;
    const packFile = path.join(config.mirrorDir!, 'wal', pack.name);
    const inPack = segmentsInPack(pack.name, fs.readFileSync(packFile)).find((s) => s.seq === target.seq)!;
    expect(inPack.sha256).toBe(target.checksum);
    const packBytes = fs.readFileSync(packFile);
    packBytes[inPack.offset + Math.floor(inPack.size / 2)]! ^= 0xff;
    fs.writeFileSync(packFile, packBytes);
    const broken = await runCli(env, 'drill', '--verify', '--json');
    const named = (broken.json.verification.generations as { generation: number }[]).find((g) => g.generation === generation.id);
    expect(named).toMatchObject({ ok: false, firstBad: { seq: target.seq, file: target.file_name } });
    const reason = (named as unknown as { firstBad: { reason: string } }).firstBad.reason;
    expect(reason).toMatch(/primary: checksum mismatch/);
    expect(reason).toMatch(/mirror: checksum mismatch/);
    expect(broken.code).toBe(1);
  });
});
