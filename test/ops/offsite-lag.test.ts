/**
 * Off-site lag: how far a restore from the mirror alone reaches, from catalog states built through
 * the Catalog API (generations, segments, snapshots, mirror copies), and the same number through
 * the producer: `/api/recovery-window`, `/health` degraded past OFFSITE_LAG_ALERT, `/metrics`, and
 * one `mirror.lagging` alert per spell to a real webhook receiver. Real SQLite catalogs, real Redis,
 * an s3rver bucket as the mirror.
 */
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import type { WalGenerationRow } from '../../src/shared/catalog/catalog-schema.js';
import { offsiteProblem, offsiteState } from '../../src/shared/wal/offsite.js';
import { recoveryWindow } from '../../src/shared/wal/window.js';
import { OFFSITE_SPELL } from '../../src/producer/watchdog.js';
import type { RunningProducer } from '../../src/producer/server.js';
import { launchChromium } from '../helpers/browser.js';
import { sandbox, TEST_TOKEN, waitUntil, type Sandbox } from '../helpers/env.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { parseExposition } from '../helpers/prometheus.js';
import { S3Server } from '../helpers/s3.js';
import { WebhookReceiver } from '../helpers/webhook.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const T = Date.parse('2026-01-10T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

let s3: S3Server;
let box: Sandbox;
let catalogs = 0;
const opened: Catalog[] = [];

beforeAll(async () => {
  s3 = await S3Server.start({ bucket: 'offsite-bucket' });
  box = sandbox('offsite-lag', { ...s3.env(), WAL_ARCHIVE_ENABLED: 'true' });
});

afterAll(async () => {
  for (const c of opened) c.close();
  await box?.cleanup();
  await s3?.cleanup();
});

/** A catalog file of its own for one state. */
function freshCatalog(file = path.join(box.dir, `catalog-${++catalogs}.db`)): Catalog {
  const catalog = new Catalog(file);
  opened.push(catalog);
  return catalog;
}

/** A completed backup row; `mirror` records its copy there as good or failed, or none. */
function snapshotBackup(catalog: Catalog, mirror: 'ok' | 'failed' | 'none'): number {
  const id = catalog.beginBackup('manual', path.join(box.dir, `snapshot-${catalogs}-${Math.random()}.db`), null, 'none');
  catalog.completeBackup(id, {
    filePath: `/x/${id}.db`,
    fileSize: 4096,
    checksum: 'a'.repeat(64),
    pageSize: 4096,
    userVersion: 0,
    databaseSize: 4096,
  });
  if (mirror !== 'none') catalog.recordCopy(id, 'mirror', mirror === 'ok', mirror === 'ok' ? null : 'bucket away');
  return id;
}

interface Built {
  generation: WalGenerationRow;
  /** Segment file names by sequence number (index 0 is seq 1). */
  files: string[];
  readAts: string[];
}

/**
 * Begins a generation with segments read at `readAts` (a chained WAL, as the archiver records it),
 * its snapshot covered at segment `coveredAt` (1-based), and the segments in `mirrored` (1-based)
 * marked as held by the mirror.
 */
function generation(catalog: Catalog, opts: { readAts: number[]; snapshot: number; coveredAt: number; mirrored: number[] }): Built {
  const g = catalog.wal.beginGeneration('test', 4096, null);
  const files: string[] = [];
  let offset = 32;
  let checksum = [g.id, 0];
  for (const [i, at] of opts.readAts.entries()) {
    const name = `wal-${g.id}-${i + 1}.seg`;
    const end = [g.id, i + 1];
    catalog.wal.addSegment({
      generation_id: g.id,
      file_name: name,
      salt1: 7,
      salt2: 9,
      big_endian: 0,
      page_size: 4096,
      first_offset: offset,
      last_offset: offset + 4120,
      start_checksum0: checksum[0]!,
      start_checksum1: checksum[1]!,
      end_checksum0: end[0]!,
      end_checksum1: end[1]!,
      frames: 1,
      commits: 1,
      db_size_pages: 2,
      read_at: iso(at),
      size_bytes: 100,
      checksum: 'b'.repeat(64),
      compression: 'zstd',
      encryption: null,
    });
    files.push(name);
    offset += 4120;
    checksum = end;
  }
  catalog.wal.setSnapshot(g.id, opts.snapshot, iso(opts.readAts[opts.coveredAt - 1]!));
  for (const seq of opts.mirrored) catalog.wal.setMirrored(files[seq - 1]!, true);
  return { generation: catalog.wal.generation(g.id)!, files, readAts: opts.readAts.map(iso) };
}

/** Five segments a second apart from `from`. */
const fiveFrom = (from: number) => [0, 1, 2, 3, 4].map((i) => from + i * 1_000);

describe('offsiteState', () => {
  it('is null without a mirror, and with WAL archiving off', () => {
    const catalog = freshCatalog();
    generation(catalog, { readAts: fiveFrom(T), snapshot: snapshotBackup(catalog, 'ok'), coveredAt: 2, mirrored: [1, 2, 3, 4, 5] });
    expect(offsiteState(box.config, catalog, T + 10_000)).not.toBeNull();
    expect(offsiteState(box.with({ BACKUP_MIRROR_URL: '' }).config, catalog, T + 10_000)).toBeNull();
    expect(offsiteState(box.with({ WAL_ARCHIVE_ENABLED: 'false' }).config, catalog, T + 10_000)).toBeNull();
  });

  it('reaches the window end when the mirror holds the snapshot and every segment', () => {
    const catalog = freshCatalog();
    const g = generation(catalog, {
      readAts: fiveFrom(T),
      snapshot: snapshotBackup(catalog, 'ok'),
      coveredAt: 2,
      mirrored: [1, 2, 3, 4, 5],
    });
    const now = T + 4_000 + 12_340;
    expect(recoveryWindow(catalog, now).latest).toBe(g.readAts[4]);
    expect(offsiteState(box.config, catalog, now)).toEqual({
      latest: g.readAts[4],
      lagSeconds: 12.3,
      unmirroredSegments: 0,
      oldestUnmirroredAt: null,
      threshold: 60,
    });
    expect(offsiteProblem(offsiteState(box.config, catalog, now), recoveryWindow(catalog, now), now)).toBeNull();
    // Past the threshold with the mirror complete: the local window itself reaches no further.
    const later = T + 4_000 + 61_000;
    expect(offsiteProblem(offsiteState(box.config, catalog, later), recoveryWindow(catalog, later), later)).toBe(
      `a restore from the mirror alone reaches ${g.readAts[4]}, 61 s ago (OFFSITE_LAG_ALERT is 60 s): ` +
        'the mirror holds every segment; the local recovery window reaches no further either',
    );
  });

  it('stops at the segment before the first one the mirror lacks, and never before the window start', () => {
    const catalog = freshCatalog();
    const snapshot = snapshotBackup(catalog, 'ok');
    // Segment 4 is missing from the mirror; segment 5 was copied (a hole does not extend the reach).
    const g = generation(catalog, { readAts: fiveFrom(T), snapshot, coveredAt: 2, mirrored: [1, 2, 3, 5] });
    const now = T + 70_000;
    const state = offsiteState(box.config, catalog, now);
    expect(state).toEqual({
      latest: g.readAts[2],
      lagSeconds: 68,
      unmirroredSegments: 1,
      oldestUnmirroredAt: g.readAts[3],
      threshold: 60,
    });
    expect(offsiteProblem(state, recoveryWindow(catalog, now), now)).toBe(
      `a restore from the mirror alone reaches ${g.readAts[2]}, 68 s ago (OFFSITE_LAG_ALERT is 60 s): ` +
        `1 segment not copied to the mirror yet, the first read at ${g.readAts[3]}`,
    );

    // The first missing segment before the snapshot's moment: the reach is the window start.
    catalog.wal.setMirrored(g.files[0]!, false);
    expect(offsiteState(box.config, catalog, now)).toMatchObject({
      latest: g.readAts[1],
      unmirroredSegments: 2,
      oldestUnmirroredAt: g.readAts[0],
    });
    // Once the mirror has them all, the window end.
    for (const f of g.files) catalog.wal.setMirrored(f, true);
    expect(offsiteState(box.config, catalog, now)).toMatchObject({ latest: g.readAts[4], lagSeconds: 66, unmirroredSegments: 0 });
  });

  it("falls back to the older generation while the newest one's snapshot has no good copy in the mirror", () => {
    const catalog = freshCatalog();
    const older = generation(catalog, {
      readAts: fiveFrom(T),
      snapshot: snapshotBackup(catalog, 'ok'),
      coveredAt: 2,
      mirrored: [1, 2, 3, 4, 5],
    });
    const newSnapshot = snapshotBackup(catalog, 'failed');
    const newer = generation(catalog, { readAts: fiveFrom(T + 10_000), snapshot: newSnapshot, coveredAt: 2, mirrored: [1, 2, 3, 4, 5] });
    const now = T + 100_000;
    const window = recoveryWindow(catalog, now);
    expect(window.generations.map((g) => g.id)).toEqual([older.generation.id, newer.generation.id]);
    const state = offsiteState(box.config, catalog, now, window);
    expect(state).toMatchObject({ latest: older.readAts[4], lagSeconds: 96, unmirroredSegments: 0 });
    expect(offsiteProblem(state, window, now)).toBe(
      `a restore from the mirror alone reaches ${older.readAts[4]}, 96 s ago (OFFSITE_LAG_ALERT is 60 s): ` +
        "the newer generations' snapshot backups have no good copy in the mirror",
    );

    catalog.recordCopy(newSnapshot, 'mirror', true);
    expect(offsiteState(box.config, catalog, now)).toMatchObject({ latest: newer.readAts[4], lagSeconds: 86 });
  });

  it('reaches nothing when no generation of the window has its snapshot in the mirror', () => {
    const catalog = freshCatalog();
    const g = generation(catalog, { readAts: fiveFrom(T), snapshot: snapshotBackup(catalog, 'none'), coveredAt: 2, mirrored: [1, 2] });
    const soon = T + 30_000;
    const state = offsiteState(box.config, catalog, soon);
    expect(state).toEqual({ latest: null, lagSeconds: null, unmirroredSegments: 3, oldestUnmirroredAt: g.readAts[2], threshold: 60 });
    // Not a problem while the window is younger than the threshold; one after.
    expect(offsiteProblem(state, recoveryWindow(catalog, soon), soon)).toBeNull();
    const later = T + 1_000 + 61_000;
    expect(offsiteProblem(offsiteState(box.config, catalog, later), recoveryWindow(catalog, later), later)).toBe(
      "a restore from the mirror alone reaches no moment of the recovery window: no generation's snapshot backup has a good copy there (OFFSITE_LAG_ALERT is 60 s)",
    );
    // An empty catalog: nothing to reach, nothing missing.
    expect(offsiteState(box.config, freshCatalog(), soon)).toEqual({
      latest: null,
      lagSeconds: null,
      unmirroredSegments: 0,
      oldestUnmirroredAt: null,
      threshold: 60,
    });
  });
});

describe('through the producer', () => {
  let hook: WebhookReceiver;
  let producer: RunningProducer;
  let catalog: Catalog;
  let config: Sandbox['config'];

  beforeAll(async () => {
    hook = await WebhookReceiver.start();
    // An interval of 200 ms makes the watchdog look every second.
    ({ config } = box.with({ ALERT_WEBHOOK_URL: hook.url, WAL_ARCHIVE_INTERVAL: '200', OFFSITE_LAG_ALERT: '30' }));
    createWorkstationDb(config.databasePath, { sizeMb: 1 });
    catalog = freshCatalog(config.catalogPath);
    producer = await startTestProducer(config);
  });

  afterAll(async () => {
    await producer?.close();
    await hook?.close();
  });

  it('shows the lag in /api/recovery-window, /health and /metrics, and alerts once per spell', async () => {
    const base = Date.now() - 600_000;
    const g = generation(catalog, { readAts: fiveFrom(base), snapshot: snapshotBackup(catalog, 'ok'), coveredAt: 2, mirrored: [1, 2] });

    const window = await request(producer.server).get('/api/recovery-window').set(auth);
    expect(window.status).toBe(200);
    const offsite = window.body.offsite as { lagSeconds: number };
    expect(window.body.offsite).toEqual({
      latest: g.readAts[1],
      lagSeconds: expect.any(Number),
      unmirroredSegments: 3,
      oldestUnmirroredAt: g.readAts[2],
      threshold: 30,
    });
    expect(offsite.lagSeconds).toBeGreaterThan(590);
    expect(offsite.lagSeconds).toBeLessThan(700);

    const health = await request(producer.server).get('/health').set(auth);
    expect(health.body.status).toBe('degraded');
    const sentence = (health.body.problems as string[]).find((p) => p.startsWith('a restore from the mirror alone'));
    expect(sentence).toMatch(
      new RegExp(
        `^a restore from the mirror alone reaches ${g.readAts[1]}, \\d+(\\.\\d)? s ago \\(OFFSITE_LAG_ALERT is 30 s\\): ` +
          `3 segments not copied to the mirror yet, the first read at ${g.readAts[2]}$`,
      ),
    );
    expect(health.body.wal.offsite).toMatchObject({ latest: g.readAts[1], unmirroredSegments: 3, threshold: 30 });

    const metrics = parseExposition((await request(producer.server).get('/metrics').set(auth)).text);
    expect(metrics.value('workstation_backup_offsite_lag_seconds')).toBeGreaterThan(590);
    expect(metrics.value('workstation_backup_offsite_latest_timestamp_seconds')).toBe(Date.parse(g.readAts[1]!) / 1_000);
    expect(metrics.value('workstation_backup_offsite_unmirrored_segments')).toBe(3);

    // The operator page shows the off-site reach beside the recovery window, in red past the threshold.
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ httpCredentials: { username: 'operator', password: TEST_TOKEN }, timezoneId: 'UTC' });
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(`${producer.url}/admin`);
      const shown = page.locator('[data-state="offsite"]');
      await shown.waitFor({ state: 'visible' });
      expect(await shown.textContent()).toMatch(
        /^Off-site: a restore from the mirror alone reaches .+ \(lag \d+(\.\d)? s, 3 segments not copied yet\)\.$/,
      );
      expect(await shown.getAttribute('class')).toBe('hint bad');
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
    }

    // One alert for the spell, however many times the watchdog looks.
    const [alert] = await waitUntil('the mirror.lagging alert', () =>
      hook.of('mirror.lagging').length ? hook.of('mirror.lagging') : null,
    );
    expect(alert!.body).toMatchObject({
      event: 'mirror.lagging',
      reason: expect.stringMatching(
        /^a restore from the mirror alone reaches .* 3 segments not copied to the mirror yet, the first read at /,
      ),
      data: { latest: g.readAts[1], unmirroredSegments: 3, oldestUnmirroredAt: g.readAts[2], threshold: 30 },
    });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(hook.of('mirror.lagging')).toHaveLength(1);

    // The spell ends once the mirror catches up with a recent segment: the lag is back under the threshold.
    const recent = Date.now();
    catalog.wal.endGeneration(g.generation.id, 'test: a fresh generation');
    const fresh = generation(catalog, {
      readAts: fiveFrom(recent - 5_000),
      snapshot: snapshotBackup(catalog, 'ok'),
      coveredAt: 1,
      mirrored: [1, 2, 3, 4, 5],
    });
    for (const f of g.files) catalog.wal.setMirrored(f, true);
    const caughtUp = await request(producer.server).get('/api/recovery-window').set(auth);
    expect(caughtUp.body.offsite).toMatchObject({ latest: fresh.readAts[4], unmirroredSegments: 0, oldestUnmirroredAt: null });
    expect(caughtUp.body.offsite.lagSeconds).toBeLessThan(30);
    const healthy = await request(producer.server).get('/health').set(auth);
    expect((healthy.body.problems as string[]).filter((p) => p.startsWith('a restore from the mirror alone'))).toEqual([]);
    await waitUntil('the spell to end', () => catalog.getSetting<string | null>(OFFSITE_SPELL) === null);
    expect(hook.of('mirror.lagging')).toHaveLength(1);

    // A new spell alerts again: the newest snapshot's copy turns out bad, the reach falls back.
    catalog.recordCopy(fresh.generation.snapshot_backup_id!, 'mirror', false, 'checksum mismatch in the bucket');
    await waitUntil('the second mirror.lagging alert', () => hook.of('mirror.lagging').length === 2);
    expect(hook.of('mirror.lagging')[1]!.body.reason).toMatch(/the newer generations' snapshot backups have no good copy in the mirror$/);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(hook.of('mirror.lagging')).toHaveLength(2);
  });
});
