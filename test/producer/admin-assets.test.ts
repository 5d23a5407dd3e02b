/**
 * The operator page's script as files (src/producer/admin/assets/): each module type-checked
 * (`// @ts-check`) and short; served at /admin/assets/ as written, behind the page's login, and
 * nothing else of the directory; the page holds no inline script, style or handler and runs in
 * chromium under its own Content-Security-Policy (no 'unsafe-inline', nonce or hash; Trusted
 * Types) without a single violation.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PAGE_CSP } from '../../src/producer/admin/router.js';
import type { RunningProducer } from '../../src/producer/server.js';
import { launchChromium } from '../helpers/browser.js';
import { TEST_TOKEN, sandbox, type Sandbox } from '../helpers/env.js';
import { startTestProducer } from '../helpers/producer.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const ASSETS = path.resolve('src/producer/admin/assets');
const modules = fs
  .readdirSync(ASSETS)
  .filter((n) => n.endsWith('.js'))
  .sort();
/** Types only (JSDoc typedefs): never imported when the page runs. */
const TYPE_ONLY = ['types.js'];

const basic = (password: string) => `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;

let box: Sandbox;
let producer: RunningProducer;
let readOnly: RunningProducer;
let browser: Browser;

beforeAll(async () => {
  box = sandbox('admin-assets');
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  producer = await startTestProducer(box.config);
  readOnly = await startTestProducer(box.with({ BOARD_READ_ONLY: 'true' }).config);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await readOnly?.close();
  await producer?.close();
  await box?.cleanup();
});

describe("the operator page's script", () => {
  it('is a set of type-checked modules of at most 300 lines each', () => {
    expect(modules).toContain('main.js');
    for (const name of modules) {
      const text = fs.readFileSync(path.join(ASSETS, name), 'utf8');
      expect(text.startsWith('// @ts-check\n'), name).toBe(true);
      expect(text.split('\n').length, name).toBeLessThanOrEqual(301);
    }
  });

  it('is served as written, behind the Basic login, revalidated on every load; nothing else of the directory is', async () => {
    for (const name of modules) {
      const res = await request(producer.server).get(`/admin/assets/${name}`).set('Authorization', basic(TEST_TOKEN));
      expect(res.status, name).toBe(200);
      expect(res.headers['content-type'], name).toBe('text/javascript; charset=utf-8');
      expect(res.headers['cache-control'], name).toBe('no-cache');
      expect(res.headers.etag, name).toBeDefined();
      expect(res.text, name).toBe(fs.readFileSync(path.join(ASSETS, name), 'utf8'));
      expect((await request(producer.server).get(`/admin/assets/${name}`)).status, name).toBe(401);
    }
    for (const other of ['tsconfig.json', 'nope.js', '..%2Frouter.ts', '%2e%2e%2Fpage.js']) {
      const res = await request(producer.server).get(`/admin/assets/${other}`).set('Authorization', basic(TEST_TOKEN));
      expect(res.status, other).toBe(404);
    }
  });
});

describe('the page and its Content-Security-Policy', () => {
  it('has no inline script, style or event handler, and a policy that allows none', async () => {
    for (const p of [producer, readOnly]) {
      const res = await request(p.server).get('/admin').set('Authorization', basic(TEST_TOKEN));
      expect(res.status).toBe(200);
      const html = res.text;
      const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
      expect(scripts).toEqual(['<script type="module" src="/admin/assets/main.js">']);
      expect(html).toMatch(/<script type="module" src="\/admin\/assets\/main.js"><\/script>/);
      expect(html).not.toMatch(/<style\b/);
      expect(html).not.toMatch(/\sstyle\s*=/);
      expect(html).not.toMatch(/\son[a-z]+\s*=/i);
      expect(html).not.toMatch(/javascript:/i);

      const csp = res.headers['content-security-policy'] ?? '';
      expect(csp).toBe(ADMIN_PAGE_CSP);
      const directives = new Map(csp.split(/;\s*/).map((d: string) => [d.split(' ')[0], d.split(' ').slice(1)]));
      expect(directives.get('default-src')).toEqual(["'none'"]);
      expect(directives.get('script-src')).toEqual(["'self'"]);
      expect(directives.get('style-src')).toEqual(["'self'"]);
      expect(directives.get('require-trusted-types-for')).toEqual(["'script'"]);
      expect(csp).not.toMatch(/unsafe-|nonce-|sha(256|384|512)-|upgrade-insecure-requests/);
    }
  });

  it('runs in chromium under that policy: every module loads, no violation', async () => {
    const context = await browser.newContext({ httpCredentials: { username: 'operator', password: TEST_TOKEN } });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      const loaded: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('console', (m) => {
        if (/Content Security Policy|Trusted Type|Refused to/i.test(m.text())) errors.push(m.text());
      });
      page.on('response', (r) => {
        const m = /\/admin\/assets\/([^/?]+)$/.exec(r.url());
        if (m && r.status() === 200) loaded.push(m[1]!);
      });
      await page.addInitScript(() => {
        const seen: string[] = [];
        (window as unknown as { violations: string[] }).violations = seen;
        document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
      const violations = () => page.evaluate(() => (window as unknown as { violations: string[] }).violations);

      await page.goto(`${producer.url}/admin`);
      // The script has run once the verdict carries the health's status and the table its count.
      await page.locator('#verdict[data-status]').waitFor();
      await page.locator('#b-total', { hasText: 'in the catalog' }).waitFor();
      expect(loaded.sort()).toEqual(modules.filter((n) => !TYPE_ONLY.includes(n)));
      expect(await violations()).toEqual([]);
      expect(errors).toEqual([]);

      // The policy is in force: a string into an HTML sink is refused, and seen as a violation.
      const refused = await page.evaluate(() => {
        try {
          document.body.insertAdjacentHTML('beforeend', '<b>x</b>');
          return 'accepted';
        } catch (err) {
          return String(err);
        }
      });
      expect(refused).toMatch(/TrustedHTML/);
      expect(await violations()).toEqual(['require-trusted-types-for trusted-types-sink']);
    } finally {
      await context.close();
    }
  });
});
