/**
 * Compaction of the WAL archive's packs (src/shared/wal/bucket-compact.ts). A real worker archives
 * a database the application writes every 5 ms (compressed and encrypted: pack headers carry a
 * MAC), one pack per 200 ms mirror pass, into a real s3rver behind a recording proxy; once 40
 * packs over two UTC minutes are there the worker stops and the segment files of BACKUP_DIR/wal
 * are moved aside, so every read comes from the bucket. `compactPacks` then runs in this process
 * with `now` moved forward (minutes, then hours, then the grace period count as passed). Checked:
 * the bucket stopped mid-merge (at the upload, at the read-back, at a deletion) leaves every
 * segment readable where the catalog says; minute then hour packs replace the parts, which stay
 * through the grace period and while a restore leases the snapshot; a reader part way through
 * reads on across every run; in the end the bucket holds exactly the catalog's packs, every
 * segment in exactly one, byte-exact; the CLI restores a moment and the latest point from the
 * bucket alone, the same databases as before, fetching one object per hour. Each run's requests:
 * with the segment files back in BACKUP_DIR/wal (one gone, one damaged) a merge GETs only the
 * parts of the segments it lacks, and one range of each merged pack (its header); no HEAD.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PART_SIZE } from '../../src/shared/storage/s3.js';
import { compactPacks } from '../../src/shared/wal/bucket-compact.js';
import { sendPending } from '../../src/shared/wal/bucket-packs.js';
import { SegmentReader } from '../../src/shared/wal/pack-reader.js';
import { segmentStoresOf } from '../../src/shared/wal/segment-store.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { setProcessEnv, waitUntil } from '../helpers/env.js';
import { packRequests, segmentsInPack, withFilesBack } from '../helpers/packs.js';
import { S3_CREDENTIALS_ENV, S3Server } from '../helpers/s3.js';
import { BALANCE_TOTAL, stateOf, startWalWriter } from '../helpers/wal-writer.js';
import { startWalStack, stopWalStack, type WalStack } from '../helpers/wal-stack.js';

const PREFIX = 'compact';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let s3: S3Server;
let restoreEnv: (() => void) | undefined;
const stack = {} as WalStack;
/** Every segment's SHA-256 as the catalog recorded it, by file name. */
const recorded = new Map<string, string>();
let originalPacks: string[] = [];
/** The compaction runs' `now`: the minute of the newest pack has closed. */
let t1: Date;
let moment: string;
const before: Record<string, { maxEvent: number; objects: number }> = {};
/** BACKUP_DIR/wal, and where its segment files are kept while the tests read from the bucket alone. */
let walDir: string;
const aside = () => path.join(stack.box.dir, 'wal-aside');

beforeAll(async () => {
  // This process reaches the bucket too (the SDK takes its credentials from the environment).
  restoreEnv = setProcessEnv(S3_CREDENTIALS_ENV);
  s3 = await S3Server.start({ record: true });
  Object.assign(
    stack,
    await startWalStack('wal-compact', 200, {
      ...s3.env(PREFIX),
      WAL_MIRROR_INTERVAL: '200',
      // Compressed and encrypted: every pack header carries a MAC, which the read-back checks.
      BACKUP_COMPRESSION: 'zstd',
      BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    }),
  );
  const { catalog, box } = stack;
  const writer = await startWalWriter(box.config.databasePath, { everyMs: 5 });
  // At least 40 packs, over two UTC minutes, so that minute packs are merged into an hour pack.
  const packTimes = () =>
    catalog.wal.generations().flatMap((g) => catalog.walBucket.packsForCompaction(g.id).map((p) => Date.parse(p.newest_read_at)));
  await waitUntil(
    '40 packs over two minutes of a generation whose snapshot is in the bucket',
    () => {
      const g = catalog.wal.openGeneration();
      const mirrored = catalog.copies('mirror').some((c) => c.backup_id === g?.snapshot_backup_id && c.status === 'ok');
      const minutes = packTimes().map((t) => Math.floor(t / MINUTE));
      return g && mirrored && minutes.length >= 40 && minutes.filter((m) => m > minutes[0]!).length >= 5;
    },
    120_000,
    500,
  );
  await writer.stop();
  await stack.worker.stop();
  // What the worker had not sent yet, as its next pass would have.
  await sendPending(box.config, catalog);
  for (const s of segments()) recorded.set(s.file_name, s.checksum);
  expect(segments().every((s) => s.mirrored === 1)).toBe(true);
  originalPacks = catalogPacks();
  walDir = segmentStoresOf(box.config).primary.dir;
  fs.mkdirSync(aside());
  for (const name of fs.readdirSync(walDir).filter((n) => n.startsWith('wal-')))
    fs.renameSync(path.join(walDir, name), path.join(aside(), name));
  const newest = Math.max(...packTimes());
  t1 = new Date(Math.floor(newest / MINUTE) * MINUTE + MINUTE);
  const all = segments();
  moment = all[Math.floor(all.length / 2)]!.read_at;
}, 150_000);

afterAll(async () => {
  await stopWalStack(stack);
  await s3?.cleanup();
  restoreEnv?.();
});

const segments = () => stack.catalog.wal.generations().flatMap((g) => stack.catalog.wal.segments(g.id));
const packRows = () => stack.catalog.wal.generations().flatMap((g) => stack.catalog.walBucket.packs(g.id));
const catalogPacks = () => packRows().map((p) => p.name);
const bucketPacks = async () => (await s3.keys(`${PREFIX}/wal/pack-`)).map((k) => k.split('/').pop()!);
const compact = (now: Date) => compactPacks(stack.box.config, stack.catalog, { now });

/** Where each segment is in the packs named (read through the S3 protocol): file name → SHA-256 of its bytes in each. */
async function contents(names: string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const name of names) {
    for (const s of segmentsInPack(name, await s3.bytes(`${PREFIX}/wal/${name}`)))
      found.set(s.fileName, [...(found.get(s.fileName) ?? []), s.sha256]);
  }
  return found;
}

/** Every recorded segment is byte-exact in the pack the catalog reads it from (`packOf`). */
async function everySegmentWhereTheCatalogSays(): Promise<void> {
  const present = new Set(await bucketPacks());
  const byPack = new Map<string, string[]>();
  for (const s of segments()) {
    const pack = stack.catalog.walBucket.packOf(s.generation_id, s.seq);
    expect(pack, `segment ${s.file_name} is in no recorded pack`).toBeDefined();
    expect(present.has(pack!.name), `${pack!.name} is not in the bucket`).toBe(true);
    byPack.set(pack!.name, [...(byPack.get(pack!.name) ?? []), s.file_name]);
  }
  const found = await contents([...byPack.keys()]);
  for (const s of segments()) expect(found.get(s.file_name), s.file_name).toContain(recorded.get(s.file_name));
}

/** The CLI restores from the bucket alone: the database's state, and the pack objects it fetched. */
async function restore(to: string, file: string): Promise<{ maxEvent: number; objects: number }> {
  const from = s3.requests.length;
  const env = { ...stack.box.env, ...s3.env(PREFIX), REDIS_URL: REDIS_DOWN };
  const output = path.join(stack.box.dir, file);
  const run = await runCli(env, 'restore', '--to', to, '--output', output, '--yes', '--json');
  expect(run.code, run.stdout + run.stderr).toBe(0);
  const state = stateOf(output);
  expect(state.integrity).toBe('ok');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events.contiguous).toBe(true);
  const keys = s3.requests.slice(from).flatMap((l) => /^GET \/[^ ?]*\/(pack-\d{8}-\d{10}-\d{10})/.exec(l)?.[1] ?? []);
  return { maxEvent: state.events.max, objects: new Set(keys).size };
}

/** The documented tiering: the widest UTC window (hour, ten minutes, minute) closed by `now`. */
function windowAt(readAt: string, now: number): string | undefined {
  const t = Date.parse(readAt);
  for (const span of [HOUR, 10 * MINUTE, MINUTE]) if (Math.floor(t / span) * span + span <= now) return `${span}@${Math.floor(t / span)}`;
  return undefined;
}
const windowsAt = (now: number) =>
  new Set(
    stack.catalog.wal
      .generations()
      .flatMap((g) => stack.catalog.walBucket.packsForCompaction(g.id).map((p) => `${g.id}:${windowAt(p.newest_read_at, now)}`)),
  );

describe('compacting the WAL packs in the bucket', () => {
  it('before: a restore fetches about one object per pack', async () => {
    expect(originalPacks.length).toBeGreaterThanOrEqual(40);
    before.moment = await restore(moment, 'before-moment.db');
    before.latest = await restore('latest', 'before-latest.db');
    console.log(
      `before compaction: ${originalPacks.length} packs; a restore to ${moment} fetched ${before.moment.objects}, to latest ${before.latest.objects}`,
    );
    expect(before.latest.objects).toBeGreaterThanOrEqual(originalPacks.length - 1);
  }, 60_000);

  it('a bucket that stops at the upload or at the read-back leaves every segment where the catalog says', async () => {
    // At the merged pack's upload.
    let from = s3.requests.length;
    let running = compact(t1);
    const put = await s3.waitForRequest(/^PUT [^ ]*\/pack-/, 30_000, from);
    await s3.stop();
    let report = await running;
    expect(report.problems.length, JSON.stringify(report)).toBeGreaterThan(0);
    expect(report.merged).toBe(0);
    await s3.start();
    expect(catalogPacks()).toEqual(originalPacks);
    await everySegmentWhereTheCatalogSays();

    // At the read-back of the merged pack: uploaded, never recorded, so retired.
    const merged = /\/(pack-[\d-]+)/.exec(put)![1]!;
    from = s3.requests.length;
    running = compact(t1);
    await s3.waitForRequest(new RegExp(`^(HEAD|GET) [^ ]*/${merged}`), 30_000, from);
    await s3.stop();
    report = await running;
    expect(report.merged).toBe(0);
    await s3.start();
    expect(catalogPacks()).toEqual(originalPacks);
    expect(stack.catalog.walBucket.retiredPacks().map((r) => r.name)).toContain(merged);
    await everySegmentWhereTheCatalogSays();
  }, 60_000);

  it('merges by minute, then by hour; parts stay through the grace period, then go; a reader reads on throughout', async () => {
    // A reader part way through the parts (a restore or a verification runs one) reads on across every run.
    const reader = new SegmentReader(stack.box.config, stack.catalog);
    const all = segments();
    let next = 0;
    const readOn = async (n: number) => {
      for (const end = Math.min(all.length, next + n); next < end; next++) {
        const read = await reader.read(all[next]!);
        expect(read.ok ? read.source : read.problem).toBe('mirror');
      }
    };
    await readOn(all.length / 5);

    const minutes = windowsAt(t1.getTime()).size;
    // The segment files back in BACKUP_DIR/wal, as on the host that writes them; one is gone, one damaged.
    const [gone, damaged] = [all[3]!, all[all.length - 3]!];
    const lacking = new Set([gone, damaged].map((seg) => stack.catalog.walBucket.packOf(seg.generation_id, seg.seq)!.name));
    let from = s3.requests.length;
    let report = await withFilesBack(aside(), walDir, () => compact(t1), { gone: gone.file_name, damaged: damaged.file_name });
    expect(report.problems).toEqual([]);
    expect(report.retired).toBe(originalPacks.length - (minutes - report.merged));
    const afterMinutes = catalogPacks();
    expect(afterMinutes.length).toBe(minutes);
    // Its requests: per merged pack one PUT and one GET (its header, one range); the parts of the
    // two segments it lacked, one GET each; nothing else (no HEAD, no LIST, no DELETE yet).
    const mergedMinutes = afterMinutes.filter((p) => !originalPacks.includes(p));
    expect(mergedMinutes.length).toBe(report.merged);
    expect(packRows().filter((p) => p.size_bytes > PART_SIZE)).toEqual([]);
    const readParts = [...lacking].filter((p) => !afterMinutes.includes(p));
    expect(report.partsRead).toBe(readParts.length);
    expect(packRequests(s3.requests.slice(from)).sort()).toEqual(
      [...mergedMinutes.flatMap((p) => [`PUT ${p}`, `GET ${p}`]), ...readParts.map((p) => `GET ${p}`)].sort(),
    );
    // The parts are still in the bucket (grace period), retired; the catalog reads the merged packs.
    expect(new Set(await bucketPacks())).toEqual(new Set([...originalPacks, ...afterMinutes]));
    const retired = stack.catalog.walBucket.retiredPacks().map((r) => r.name);
    expect(new Set(retired)).toEqual(new Set(originalPacks.filter((p) => !afterMinutes.includes(p))));
    await everySegmentWhereTheCatalogSays();
    await readOn(all.length / 5);

    // Two hours on: hour packs. While a restore holds a lease on the generation's snapshot, nothing is deleted.
    const t2 = new Date(t1.getTime() + 2 * HOUR);
    const hours = windowsAt(t2.getTime()).size;
    const snapshot = stack.catalog.wal.generations().at(-1)!.snapshot_backup_id!;
    stack.catalog.lease(snapshot, 'test-reader', 60_000);
    from = s3.requests.length;
    report = await withFilesBack(aside(), walDir, () => compact(t2));
    stack.catalog.unlease(snapshot, 'test-reader');
    expect(report).toMatchObject({ deleted: 0, partsRead: 0, problems: [] });
    const afterHours = catalogPacks();
    expect(afterHours.length).toBe(hours);
    // Every segment file there: a PUT and a one-range GET of its header per merged pack, not one GET of a part.
    const mergedHours = afterHours.filter((p) => !afterMinutes.includes(p));
    expect(mergedHours.length).toBe(report.merged);
    expect(packRows().filter((p) => p.size_bytes > PART_SIZE)).toEqual([]);
    expect(packRequests(s3.requests.slice(from)).sort()).toEqual(mergedHours.flatMap((p) => [`PUT ${p}`, `GET ${p}`]).sort());
    expect(new Set(await bucketPacks())).toEqual(new Set([...originalPacks, ...afterMinutes, ...afterHours]));
    await everySegmentWhereTheCatalogSays();
    await readOn(all.length / 5);
    // The lease let go: the first parts go, one DELETE each and nothing else.
    from = s3.requests.length;
    report = await compact(t2);
    expect(report).toMatchObject({ merged: 0, deleted: retired.length, problems: [] });
    expect(packRequests(s3.requests.slice(from)).sort()).toEqual(retired.map((p) => `DELETE ${p}`).sort());
    expect(new Set(await bucketPacks())).toEqual(new Set([...afterHours, ...afterMinutes]));
    await everySegmentWhereTheCatalogSays();
    await readOn(all.length);
    reader.close();

    // Past the minute packs' grace period. The bucket stops at the first deletion; the next run deletes the rest.
    const t3 = new Date(t2.getTime() + 11 * MINUTE);
    from = s3.requests.length;
    const running = compact(t3);
    await s3.waitForRequest(/^DELETE [^ ]*\/pack-/, 30_000, from);
    await s3.stop();
    report = await running;
    expect(report.problems.length).toBeGreaterThan(0);
    await s3.start();
    await everySegmentWhereTheCatalogSays();
    report = await compact(t3);
    expect(report).toMatchObject({ merged: 0, pending: 0, problems: [] });
    // The bucket holds exactly the catalog's packs, every segment in one of them.
    expect((await bucketPacks()).sort()).toEqual([...afterHours].sort());
    const found = await contents(afterHours);
    expect(found.size).toBe(recorded.size);
    for (const [file, sha] of recorded) expect(found.get(file), file).toEqual([sha]);
    console.log(`after compaction: ${afterHours.length} pack(s) (minute tier: ${afterMinutes.length})`);
  }, 120_000);

  it('after: the bucket alone restores the same databases, fetching one object per hour', async () => {
    const packs = catalogPacks().length;
    const atMoment = await restore(moment, 'after-moment.db');
    const latest = await restore('latest', 'after-latest.db');
    console.log(`after compaction: a restore to ${moment} fetched ${atMoment.objects}, to latest ${latest.objects} (of ${packs})`);
    expect(atMoment.maxEvent).toBe(before.moment!.maxEvent);
    expect(latest.maxEvent).toBe(before.latest!.maxEvent);
    expect(atMoment.objects).toBeLessThanOrEqual(packs);
    expect(latest.objects).toBeLessThanOrEqual(packs);
  }, 60_000);
});
