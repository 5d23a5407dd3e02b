import type { Browser } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_TOKEN } from '../helpers/env.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { launchChromium } from '../helpers/browser.js';
import type { RunningProducer } from '../../src/producer/server.js';
import { useStack } from '../helpers/stack.js';

let readOnly: RunningProducer;
let browser: Browser;

const basic = (password: string) => `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;

const stack = useStack('board');

beforeAll(async () => {
  readOnly = await startTestProducer(stack.box.with({ BOARD_READ_ONLY: 'true' }).config);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await readOnly?.close();
});

describe('Bull Board at /admin/queues', () => {
  it('shows a person with the token the three queues and a completed backup job', async () => {
    const res = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(res.status).toBe(201);
    const jobId = stack.catalog.getBackup(res.body.backup.id)!.job_id!;

    const context = await browser.newContext({ httpCredentials: { username: 'operator', password: TEST_TOKEN } });
    try {
      const page = await context.newPage();
      const overview = await page.goto(`${stack.producer.url}/admin/queues`);
      expect(overview?.status()).toBe(200);
      for (const name of ['backup', 'verify', 'restore']) {
        await page.getByRole('link', { name, exact: true }).first().waitFor({ timeout: 20_000 });
      }
      expect(await page.title()).toContain('Workstation backups');

      await page.goto(`${stack.producer.url}/admin/queues/queue/backup?status=completed`);
      await page.getByText(jobId, { exact: false }).first().waitFor({ timeout: 20_000 });
    } finally {
      await context.close();
    }
  });

  it('serves its page under a CSP that does not send its scripts to https:// (the board works over plain HTTP)', async () => {
    const res = await request(stack.producer.server).get('/admin/queues').set('Authorization', basic(TEST_TOKEN));
    expect(res.status).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).not.toMatch(/upgrade-insecure-requests/);
  });

  it("answers a malformed JSON body in the one error shape, not the board's own", async () => {
    // Found by test/producer/fuzz.test.ts: PATCH /admin/queues with the body "[" got the board's
    // {"error":{"key":…},"message":…} instead.
    for (const path of ['/admin/queues', '/admin/queues/api/queues/backup/retry/failed']) {
      const res = await request(stack.producer.server)
        .patch(path)
        .set('Authorization', basic(TEST_TOKEN))
        .set('Content-Type', 'application/json')
        .send('[');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ success: false, error: { code: 'invalid_json', message: expect.any(String) } });
    }
  });

  it('answers 401 without credentials, in a browser and to a script', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // The browser gets the 401 challenge; with no credentials to give, navigation stops there.
      const challenged = page.waitForResponse((r) => r.url().endsWith('/admin/queues'));
      await page.goto(`${stack.producer.url}/admin/queues`).catch(() => undefined);
      const res = await challenged;
      expect(res.status()).toBe(401);
      expect(res.headers()['www-authenticate']).toMatch(/^Basic /);
    } finally {
      await context.close();
    }
    const none = await request(stack.producer.server).get('/admin/queues/api/queues');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="workstation-backup queues"/);
    expect(none.body).toEqual({ success: false, error: { code: 'unauthorized', message: 'credentials required' } });
    const wrong = await request(stack.producer.server)
      .get('/admin/queues/api/queues')
      .set('Authorization', basic('not-the-token-0123456789'));
    expect(wrong.status).toBe(401);
    // The bearer form of the API is not a way in either: the board takes Basic only.
    expect((await request(stack.producer.server).get('/admin/queues/api/queues').set(auth)).status).toBe(401);
  });

  it('changes nothing in read-only mode, and takes changes only from its own pages otherwise', async () => {
    const retry = (app: RunningProducer) =>
      request(app.server).put('/admin/queues/api/queues/backup/retry/failed').set('Authorization', basic(TEST_TOKEN));

    const list = await request(readOnly.server).get('/admin/queues/api/queues').set('Authorization', basic(TEST_TOKEN));
    expect(list.status).toBe(200);
    expect(list.body.queues.map((q: { name: string; readOnlyMode: boolean }) => [q.name, q.readOnlyMode]).sort()).toEqual([
      ['backup', true],
      ['restore', true],
      ['verify', true],
      ['wal', true],
    ]);
    expect((await retry(readOnly)).status).toBe(405);

    expect((await retry(stack.producer).set('Sec-Fetch-Site', 'cross-site')).status).toBe(403);
    expect((await retry(stack.producer).set('Origin', 'http://elsewhere.example')).status).toBe(403);
    expect((await retry(stack.producer).set('Sec-Fetch-Site', 'same-origin')).status).toBe(200);
  });
});
