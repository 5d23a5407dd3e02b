/**
 * The operator's page at /admin in a real browser (Debian's chromium through playwright-core),
 * over a real producer, a real worker process, real Redis and real SQLite files, with WAL
 * archiving on: behind Basic auth; the state, the table and the timeline show what the catalog
 * holds; a backup started from the page completes and appears without a reload; a restore to a
 * moment picked on the timeline asks first, runs, and leaves the database as of that moment;
 * read-only mode shows no action and the server refuses them anyway.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import type { RunningProducer } from '../../src/producer/server.js';
import { recoveryWindow } from '../../src/shared/wal/window.js';
import { TEST_TOKEN, waitUntil } from '../helpers/env.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { addEventsTable, archivingUnderWay, BALANCE_TOTAL, sleep, startWalWriter, stateOf } from '../helpers/wal-writer.js';
import { query } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

const INTERVAL = 200;
/** The README's screenshots are rewritten only on request (UPDATE_SCREENSHOTS=1); otherwise they go to the sandbox. */
const shotsDir = () => (process.env.UPDATE_SCREENSHOTS === '1' ? path.resolve('docs') : stack.box.dir);

let readOnly: RunningProducer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Errors the page's script threw; every test ends with none. */
const pageErrors: string[] = [];

const basic = (password: string) => `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;

const stack = useStack('admin-page', {
  env: {
    WAL_ARCHIVE_ENABLED: 'true',
    WAL_ARCHIVE_INTERVAL: String(INTERVAL),
    REQUEST_TIMEOUT: '60000',
    MAX_BACKUPS: '50',
    LOCK_RETRY_DELAY: '50',
  },
  prepare: addEventsTable,
});

beforeAll(async () => {
  readOnly = await startTestProducer(stack.box.with({ BOARD_READ_ONLY: 'true' }).config);
  browser = await launchChromium();
  context = await browser.newContext({
    httpCredentials: { username: 'operator', password: TEST_TOKEN },
    viewport: { width: 1280, height: 900 },
    timezoneId: 'Europe/Berlin',
    locale: 'en-GB',
  });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
}, 60_000);

afterEach(() => {
  expect(pageErrors).toEqual([]);
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await readOnly?.close();
});

/** The rows of the page's backups table, as shown. */
function tableRows(p: Page) {
  return p.$$eval('#backups-body tr[data-backup-id]', (rows) =>
    rows.map((r) => ({
      id: Number(r.getAttribute('data-backup-id')),
      type: r.getAttribute('data-type'),
      status: r.getAttribute('data-status'),
      time: r.querySelector('td:nth-child(3) time')?.getAttribute('datetime') ?? null,
      encoding: r.querySelector('td:nth-child(5)')?.textContent ?? null,
      verification: r.querySelector('td[data-verification]')?.getAttribute('data-verification') ?? null,
    })),
  );
}

/** What the catalog says a backup's last verification was, in the page's words. */
function verificationWord(id: number, status: string): string {
  if (status === 'failed') return 'failed';
  const v = stack.catalog.lastVerification(id);
  return v ? (v.valid === 1 ? 'valid' : 'invalid') : 'never';
}

const restoreCount = () => query<{ c: number }>(stack.box.config.catalogPath, 'SELECT count(*) AS c FROM restore_log').c;

const eventRows = (file: string) => {
  const conn = new Database(file, { readonly: true });
  try {
    return conn.prepare('SELECT n, at FROM events ORDER BY n').all() as { n: number; at: string }[];
  } finally {
    conn.close();
  }
};

describe('the operator page at /admin', () => {
  it('is refused without the token, in a browser and to a script', async () => {
    const stranger = await browser.newContext();
    try {
      const p = await stranger.newPage();
      const challenged = p.waitForResponse((r) => r.url().endsWith('/admin'));
      await p.goto(`${stack.producer.url}/admin`).catch(() => undefined);
      const res = await challenged;
      expect(res.status()).toBe(401);
      expect(res.headers()['www-authenticate']).toMatch(/^Basic realm="workstation-backup admin"/);
    } finally {
      await stranger.close();
    }
    for (const url of ['/admin', '/admin/admin.js', '/admin/api/backups', '/admin/api/health']) {
      const none = await request(stack.producer.server).get(url);
      expect(none.status, url).toBe(401);
      expect(none.body).toEqual({ success: false, error: { code: 'unauthorized', message: 'credentials required' } });
      expect((await request(stack.producer.server).get(url).set('Authorization', basic('not-the-token-0123456789'))).status, url).toBe(401);
      // The API's bearer form is not a way into the page: it takes Basic only, as the board does.
      expect((await request(stack.producer.server).get(url).set(auth)).status, url).toBe(401);
    }
    // The board below it keeps its own login and answers as before.
    const board = await request(stack.producer.server).get('/admin/queues/api/queues').set('Authorization', basic(TEST_TOKEN));
    expect(board.status).toBe(200);
    expect((await request(stack.producer.server).get('/admin/queues/api/queues')).headers['www-authenticate']).toMatch(
      /workstation-backup queues/,
    );
    const ok = await request(stack.producer.server).get('/admin').set('Authorization', basic(TEST_TOKEN));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('<h1>Workstation backups</h1>');
    // The board links to the page.
    const boardPage = await request(stack.producer.server).get('/admin/queues').set('Authorization', basic(TEST_TOKEN));
    expect(boardPage.text).toContain('"miscLinks":[{"text":"Operator page","url":"/admin"}]');
  });

  it('shows the catalog: the health verdict, the last backup, the table and the timeline', async () => {
    for (const type of ['manual', 'pre-migration', 'manual']) {
      const res = await request(stack.producer.server).post('/api/backups').set(auth).send({ type });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    const verified = stack.catalog.listBackups({ limit: 1, offset: 0, status: 'completed' })[0]!.id;
    const v = await request(stack.producer.server).post(`/api/backups/${verified}/verify`).set(auth).send({ mode: 'full' });
    expect(v.status, JSON.stringify(v.body)).toBe(200);
    await archivingUnderWay(stack.catalog, { segments: 0 });

    await page.goto(`${stack.producer.url}/admin`);
    const all = stack.catalog.listBackups({ limit: 100, offset: 0 });
    await waitUntil('the table to list every backup of the catalog', async () => (await tableRows(page)).length === all.length, 15_000);
    const rows = await tableRows(page);
    expect(rows).toEqual(
      all.map((b) => ({
        id: b.id,
        type: b.backup_type,
        status: b.status,
        time: b.started_at,
        encoding: b.compression ?? 'none',
        verification: verificationWord(b.id, b.status),
      })),
    );
    expect(rows.find((r) => r.id === verified)?.verification).toBe('valid');

    const health = (await request(stack.producer.server).get('/health').set(auth)).body;
    await page.waitForSelector(`#verdict[data-status="${health.status}"]`);
    const lastBackup = await page.getAttribute('#s-last-backup time', 'datetime');
    expect(lastBackup).toBe(health.backups.lastSuccessfulBackup);
    // Times in the browser's zone (Berlin), UTC on hover.
    const shown = await page.$eval('#s-last-backup time', (t) => ({ text: t.textContent, title: t.getAttribute('title') }));
    expect(shown.title).toBe(`${lastBackup!.replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`);
    const berlin = new Date(lastBackup!).toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin' });
    expect(shown.text).toContain(berlin);
    expect(await page.textContent('#s-archive')).toMatch(/lag \d+(\.\d)? s/);

    const window = recoveryWindow(stack.catalog);
    await waitUntil(
      'the timeline to show every generation and a mark per backup',
      async () =>
        (await page.$$('[data-generation-id]')).length === window.generations.length &&
        (await page.$$('[data-mark-id]')).length === stack.catalog.countBackups(),
      15_000,
    );
    const bars = await page.$$eval('[data-generation-id]', (els) =>
      els.map((e) => ({ id: Number(e.getAttribute('data-generation-id')), start: e.getAttribute('data-start') })),
    );
    expect(bars).toEqual(window.generations.map((g) => ({ id: g.id, start: g.start })));
    const marks = await page.$$eval('[data-mark-id]', (els) =>
      els.map((e) => ({
        id: Number(e.getAttribute('data-mark-id')),
        verification: e.getAttribute('data-verification'),
        safety: e.classList.contains('safety'),
      })),
    );
    expect(marks.sort((a, b) => a.id - b.id)).toEqual(
      stack.catalog
        .listBackups({ limit: 100, offset: 0 })
        .map((b) => ({ id: b.id, verification: verificationWord(b.id, b.status), safety: b.backup_type === 'pre-migration' }))
        .sort((a, b) => a.id - b.id),
    );
    expect(await page.$('[data-now]')).not.toBeNull();

    // Hovering a mark shows its details.
    await page.hover(`[data-mark-id="${verified}"]`);
    const tip = await page.textContent('#tip');
    expect(tip).toContain(`Backup #${verified}`);
    expect(tip).toContain('last verification: valid (full');
  });

  it('starts a backup that completes and appears in the table and on the timeline without a reload', async () => {
    await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));
    const before = stack.catalog.countBackups();
    await page.click('#backup-now');
    const item = page.locator('#job-list li[data-job-id]').first();
    await item.waitFor();
    const jobId = await item.getAttribute('data-job-id');
    await page.waitForSelector(`#job-list li[data-job-id="${jobId}"][data-job-state="completed"]`, { timeout: 30_000 });
    const row = stack.catalog.getBackupByJob(jobId!);
    expect(row?.status).toBe('completed');
    expect(stack.catalog.countBackups()).toBe(before + 1);
    await page.waitForSelector(`#backups-body tr[data-backup-id="${row!.id}"]`, { timeout: 10_000 });
    await page.waitForSelector(`[data-mark-id="${row!.id}"]`, { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);

    // Verify it from its row: the row and its mark turn valid, still without a reload.
    expect(stack.catalog.lastVerification(row!.id)).toBeUndefined();
    await page.click(`#backups-body tr[data-backup-id="${row!.id}"] button[data-action="verify"]`);
    await page.waitForFunction(() => document.querySelectorAll('#job-list li[data-job-id]').length === 2);
    const verifyJob = await page.locator('#job-list li[data-job-id]').first().getAttribute('data-job-id');
    await page.waitForSelector(`#job-list li[data-job-id="${verifyJob}"][data-job-state="completed"]`, { timeout: 30_000 });
    expect(stack.catalog.lastVerification(row!.id)).toMatchObject({ valid: 1, mode: 'full' });
    await page.waitForSelector(`#backups-body tr[data-backup-id="${row!.id}"] td[data-verification="valid"]`, { timeout: 10_000 });
    await page.waitForSelector(`[data-mark-id="${row!.id}"][data-verification="valid"]`, { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
  });

  it('pages through the backups with the API cursor, filtered by type and status', async () => {
    for (let i = 0; stack.catalog.countBackups() < 32; i++) {
      const res = await request(stack.producer.server)
        .post('/api/backups')
        .set(auth)
        .send({ type: i % 3 === 0 ? 'pre-migration' : 'manual' });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    const ids = async () => (await tableRows(page)).map((r) => r.id);
    const shows = async (what: string, expected: () => number[]) => {
      await waitUntil(what, async () => JSON.stringify(await ids()) === JSON.stringify(expected()), 15_000).catch(() => undefined);
      expect(await ids(), what).toEqual(expected());
    };
    const catalogIds = (filter: { type?: string; status?: 'completed' }, skip = 0) =>
      stack.catalog
        .listBackups({ limit: 1000, offset: 0, status: filter.status })
        .filter((b) => !filter.type || b.backup_type === filter.type)
        .slice(skip, skip + 25)
        .map((b) => b.id);

    await shows('the newest 25 backups', () => catalogIds({}));
    expect(await page.isDisabled('#page-newer')).toBe(true);
    await page.click('#page-older');
    await shows('the next page', () => catalogIds({}, 25));
    await page.click('#page-newer');
    await shows('the first page again', () => catalogIds({}));

    await page.selectOption('#f-type', 'pre-migration');
    await shows('pre-migration backups only', () => catalogIds({ type: 'pre-migration' }));
    expect(new Set((await tableRows(page)).map((r) => r.type))).toEqual(new Set(['pre-migration']));
    await page.selectOption('#f-type', 'manual');
    await page.selectOption('#f-status', 'completed');
    await shows('completed manual backups', () => catalogIds({ type: 'manual', status: 'completed' }));
    if (catalogIds({ type: 'manual', status: 'completed' }, 25).length) {
      await page.click('#page-older');
      await shows('the next page of completed manual backups', () => catalogIds({ type: 'manual', status: 'completed' }, 25));
    }
    await page.selectOption('#f-type', '');
    await page.selectOption('#f-status', '');
    await shows('every backup again', () => catalogIds({}));
  });

  it('restores to a moment picked on the timeline, after asking, and the database holds the rows of that moment', async () => {
    const writer = await startWalWriter(stack.box.config.databasePath);
    await sleep(4_000);
    const { lastN, errors } = await writer.stop();
    expect(errors).toBe(0);
    const generation = stack.catalog.wal.openGeneration()!;
    await waitUntil(
      `the archive to hold the writer's ${lastN} commits`,
      () => stack.catalog.wal.segments(generation.id).reduce((n, s) => n + s.commits, 0) >= lastN,
      20_000,
    );
    const timeline = eventRows(stack.box.config.databasePath);
    const T = (Date.parse(timeline[0]!.at) + Date.parse(timeline.at(-1)!.at)) / 2;

    // The page updates itself: the running generation's bar grows past T.
    const bar = page.locator(`[data-generation-id="${generation.id}"]`);
    await waitUntil('the timeline to reach past T', async () => Date.parse((await bar.getAttribute('data-end')) ?? '') > T + 1_000, 15_000);
    const { start, end } = {
      start: Date.parse((await bar.getAttribute('data-start'))!),
      end: Date.parse((await bar.getAttribute('data-end'))!),
    };
    const box_ = (await bar.boundingBox())!;
    // By keyboard first: End picks the window's last moment, ← steps back from it.
    await page.focus('#timeline');
    await page.keyboard.press('End');
    let picked = await page.getAttribute('#restore-at', 'data-iso');
    expect(Math.abs(Date.parse(picked!) - Date.parse((await bar.getAttribute('data-end'))!))).toBeLessThanOrEqual(5_000);
    await page.keyboard.press('ArrowLeft');
    expect(Date.parse((await page.getAttribute('#restore-at', 'data-iso'))!)).toBeLessThan(Date.parse(picked!));

    await bar.click({ position: { x: ((T - start) / (end - start)) * box_.width, y: box_.height / 2 } });
    picked = await page.getAttribute('#restore-at', 'data-iso');
    expect(picked).not.toBeNull();
    const pickedAt = Date.parse(picked!);
    // A click's pixel and the whole second it is rounded to: within a second and a half of T, inside the writer's run.
    expect(Math.abs(pickedAt - T)).toBeLessThan(1_500);
    expect(pickedAt > Date.parse(timeline[0]!.at) && pickedAt < Date.parse(timeline.at(-1)!.at)).toBe(true);

    const jobsBefore = (await page.$$('#job-list li[data-job-id]')).length;
    const restoresBefore = restoreCount();
    // A backup's own Restore… asks too, naming the backup and when it was taken.
    const newestId = (await tableRows(page))[0]!.id;
    await page.click(`#backups-body tr[data-backup-id="${newestId}"] button[data-action="restore"]`);
    await page.locator('dialog#confirm').waitFor({ state: 'visible' });
    expect(await page.textContent('#confirm-title')).toBe(`Restore backup #${newestId}?`);
    expect(await page.textContent('#confirm-text')).toContain(`will be replaced by backup #${newestId}, taken `);
    expect(await page.evaluate(() => document.activeElement?.id), 'the safe choice has the focus').toBe('confirm-cancel');
    await page.keyboard.press('Escape');
    await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
    await page.click('#restore-at-go');
    const dialog = page.locator('dialog#confirm');
    await dialog.waitFor({ state: 'visible' });
    const question = await dialog.textContent();
    expect(question).toContain(new Date(pickedAt).toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin' }));
    expect(question).toContain(
      `${new Date(pickedAt)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, '')} UTC`,
    );
    expect(question).toContain(`replaces the live database ${stack.box.config.databasePath}`);
    // Cancel first: nothing is queued.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await page.$$('#job-list li[data-job-id]')).toHaveLength(jobsBefore);
    expect(restoreCount()).toBe(restoresBefore);

    await page.click('#restore-at-go');
    await dialog.waitFor({ state: 'visible' });
    await page.click('#confirm-ok');
    const item = page.locator('#job-list li[data-job-id]').first();
    await page.waitForFunction((n) => document.querySelectorAll('#job-list li[data-job-id]').length === n, jobsBefore + 1);
    const jobId = await item.getAttribute('data-job-id');
    await page.waitForSelector(`#job-list li[data-job-id="${jobId}"][data-job-state="completed"]`, { timeout: 45_000 });

    const restored = stack.catalog.getRestoreByJob(jobId!);
    expect(restored?.status).toBe('completed');
    const state = stateOf(stack.box.config.databasePath);
    expect(state.integrity).toBe('ok');
    expect(state.balanceSum).toBe(BALANCE_TOTAL);
    expect(state.events.contiguous).toBe(true);
    const rows = eventRows(stack.box.config.databasePath);
    expect(rows).toEqual(timeline.slice(0, rows.length));
    const newest = rows.at(-1)!.at;
    expect(Date.parse(newest) <= pickedAt, `the newest row restored is stamped ${newest}, after the moment picked ${picked}`).toBe(true);
    const due = timeline.filter((e) => Date.parse(e.at) <= pickedAt - 2 * INTERVAL).at(-1)!;
    expect(rows.length, `row ${due.n} (stamped ${due.at}, two intervals before ${picked}) is missing`).toBeGreaterThanOrEqual(due.n);
    expect(rows.length).toBeLessThan(timeline.length);

    // The safety backup the restore took shows as such, and the new generation after a gap.
    await page.waitForSelector(`[data-mark-id="${restored!.safety_backup_id}"].safety`, { timeout: 15_000 });
    await page.waitForSelector('[data-gap]', { timeout: 20_000 }).catch(() => undefined);

    await page.screenshot({ path: path.join(shotsDir(), 'admin-1280.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    await page.evaluate(() => window.dispatchEvent(new Event('resize')));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(shotsDir(), 'admin-390.png'), fullPage: true });
    expect(fs.statSync(path.join(shotsDir(), 'admin-390.png')).size).toBeGreaterThan(10_000);
  });

  it('shows no destructive control in read-only mode, and the server refuses the requests anyway', async () => {
    const p = await context.newPage();
    try {
      await p.goto(`${readOnly.url}/admin`);
      await p.waitForSelector('#backups-body tr[data-backup-id]');
      await p.waitForSelector('[data-generation-id]');
      expect(await p.$$('button[data-action], #backup-now, #restore-to-form, dialog#confirm, #restore-latest')).toHaveLength(0);
      expect(await p.textContent('#read-only-banner')).toContain('BOARD_READ_ONLY');
      // Clicking a mark or a bar does nothing either.
      await p.click('[data-generation-id]');
      expect(await p.$('[data-pick]')).toBeNull();
    } finally {
      await p.close();
    }

    const backups = stack.catalog.countBackups();
    const post = (app: RunningProducer, url: string, body: object) =>
      request(app.server).post(url).set('Authorization', basic(TEST_TOKEN)).set('Sec-Fetch-Site', 'same-origin').send(body);
    const id = stack.catalog.listBackups({ limit: 1, offset: 0, status: 'completed' })[0]!.id;
    for (const [url, body] of [
      ['/admin/api/backups', {}],
      [`/admin/api/backups/${id}/verify`, { mode: 'full' }],
      [`/admin/api/backups/${id}/restore`, {}],
      ['/admin/api/restores', { to: 'latest' }],
    ] as const) {
      const res = await post(readOnly, url, body);
      expect(res.status, url).toBe(403);
      expect(res.body.error.code, url).toBe('read_only');
    }
    expect(stack.catalog.countBackups()).toBe(backups);
    // Reading still works in read-only mode.
    expect((await request(readOnly.server).get('/admin/api/backups?limit=1').set('Authorization', basic(TEST_TOKEN))).status).toBe(200);

    // Changes come only from the page's own origin, as on the board.
    const cross = await post(stack.producer, '/admin/api/backups', {}).set('Sec-Fetch-Site', 'cross-site');
    expect(cross.status).toBe(403);
    expect(cross.body.error.code).toBe('cross_site_request');
    const elsewhere = await request(stack.producer.server)
      .post('/admin/api/backups')
      .set('Authorization', basic(TEST_TOKEN))
      .set('Origin', 'http://elsewhere.example')
      .send({});
    expect(elsewhere.status).toBe(403);
    expect(stack.catalog.countBackups()).toBe(backups);
  });
});
