/**
 * The bucket never slows the local WAL archive (issue 21, reproduction 6). With the mirror's
 * server hung (SIGSTOP: it accepts connections and answers nothing) and BACKUP_MIRROR_TIMEOUT=1000,
 * segments keep being stored and recorded about once an interval, `/health`'s WAL lag stays within
 * two intervals and the archiver's lease never lapses; once the bucket answers again, every segment
 * is sent to it (in packs, byte-exact), without anyone asking. A shutdown while a copy hangs is prompt. Real
 * worker process, real Redis, a real s3rver, the application's writer in a process of its own.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalSegmentRow } from '../../src/shared/catalog/catalog-schema.js';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { packedSegments } from '../helpers/packs.js';
import { S3Server } from '../helpers/s3.js';
import { archivingUnderWay, chainProblems, sleep, startWalWriter } from '../helpers/wal-writer.js';
import { startWalStack, stopWalStack, type WalStack } from '../helpers/wal-stack.js';

const INTERVAL = 1_000;
const HANG_MS = 8_000;
/** What a sync, a report and a busy machine may add to the two intervals. */
const SLACK_MS = 500;
const PREFIX = 'hang';

let s3: S3Server;
const stack = {} as WalStack;

beforeAll(async () => {
  s3 = await S3Server.start({ record: true });
  Object.assign(
    stack,
    await startWalStack('wal-mirror-hang', INTERVAL, {
      ...s3.env(PREFIX),
      BACKUP_MIRROR_TIMEOUT: '1000',
      // A lease of three intervals (see archiverLeaseMs): a sync held up by the bucket would outlast it.
      JOB_LOCK_DURATION: '6000',
    }),
  );
});

afterAll(async () => {
  s3?.resume();
  await stopWalStack(stack);
  await s3?.cleanup();
});

const allSegments = (): WalSegmentRow[] => stack.catalog.wal.generations().flatMap((g) => stack.catalog.wal.segments(g.id));
const lease = () => stack.catalog.getSetting<{ owner: string; expiresAt: number }>('wal-archiver-lease');

async function walLagSeconds(): Promise<number> {
  const res = await request(stack.producer.server).get('/health').set(auth);
  expect(res.body.wal?.lagSeconds, JSON.stringify(res.body.wal)).toEqual(expect.any(Number));
  return res.body.wal.lagSeconds as number;
}

describe('a hung bucket', () => {
  it('never slows the local archive; the mirror catches up once the bucket answers, and a shutdown does not wait for it', async () => {
    const writer = await startWalWriter(stack.box.config.databasePath, { everyMs: 10 });
    await archivingUnderWay(stack.catalog, { segments: 3 });
    await waitUntil('the first segments copied to the mirror', () => {
      const all = allSegments();
      return all.length >= 3 && all.every((s) => s.mirrored === 1);
    });

    s3.pause();
    const hungAt = Date.now();
    const lags: number[] = [];
    const lapses: string[] = [];
    const owners = new Set<string>();
    while (Date.now() - hungAt < HANG_MS) {
      lags.push(await walLagSeconds());
      const held = lease();
      if (held) owners.add(held.owner);
      if (!held || held.expiresAt <= Date.now()) lapses.push(`${Date.now() - hungAt} ms into the hang: ${JSON.stringify(held)}`);
      await sleep(200);
    }
    const hangEnded = Date.now();
    const all = allSegments();
    const during = all.filter((s) => Date.parse(s.read_at) >= hungAt);
    const readAt = [...all.filter((s) => Date.parse(s.read_at) < hungAt).slice(-1), ...during].map((s) => Date.parse(s.read_at));
    const gaps = [...readAt.slice(1).map((t, i) => t - readAt[i]!), hangEnded - readAt.at(-1)!];
    const measured = {
      segmentsWhileHung: during.length,
      longestGapMs: Math.max(...gaps),
      longestHealthLagS: Math.max(...lags),
      healthSamples: lags.length,
      leaseLapses: lapses.length,
    };
    console.info(`hung bucket, ${HANG_MS} ms at an interval of ${INTERVAL} ms: ${JSON.stringify(measured)}`);

    // Stored and recorded locally about once an interval (a sync stores up to two segments).
    expect(measured.segmentsWhileHung, JSON.stringify(measured)).toBeGreaterThanOrEqual(HANG_MS / INTERVAL - 2);
    expect(measured.longestGapMs, JSON.stringify(measured)).toBeLessThan(2 * INTERVAL + SLACK_MS);
    expect(measured.longestHealthLagS * 1_000, JSON.stringify(measured)).toBeLessThanOrEqual(2 * INTERVAL);
    expect(lapses, 'the archiver lease lapsed while the bucket hung').toEqual([]);
    expect(owners.size).toBe(1);
    // The bucket really was hung: nothing read after it stopped answering is on it yet.
    expect(during.filter((s) => s.mirrored === 1).map((s) => s.file_name)).toEqual([]);

    // Back: every segment is copied and checked, on its own.
    await writer.stop();
    s3.resume();
    const resumedAt = Date.now();
    await waitUntil(
      'every segment copied to the mirror after the bucket came back',
      () => allSegments().every((s) => s.mirrored === 1),
      20_000,
      200,
    );
    console.info(`caught up ${allSegments().length} segments ${Date.now() - resumedAt} ms after the bucket came back`);
    const objects = new Map<string, Buffer>();
    for (const key of await s3.keys(`${PREFIX}/wal/pack-`)) objects.set(key, await s3.bytes(key));
    const packed = packedSegments(objects);
    for (const s of allSegments()) expect(packed.get(s.file_name)?.sha256, s.file_name).toBe(s.checksum);
    expect(chainProblems(stack.catalog)).toEqual([]);

    // A copy hanging at shutdown is given up at once: the worker does not wait for BACKUP_MIRROR_TIMEOUT.
    const again = await startWalWriter(stack.box.config.databasePath, { everyMs: 10 });
    const mark = s3.requests.length;
    s3.pause();
    await s3.waitForRequest(new RegExp(`^\\w+ /${s3.bucket}/${PREFIX}/wal/`), 10_000, mark);
    await sleep(200);
    const stopping = Date.now();
    expect(await stack.worker.stop()).toBe(0);
    const shutdownMs = Date.now() - stopping;
    console.info(`worker stopped ${shutdownMs} ms after SIGTERM with a copy hanging`);
    expect(shutdownMs).toBeLessThan(2_500);
    s3.resume();
    await again.stop();
  });
});
