/**
 * Bad input and security: over a thousand malformed requests, sent as raw bytes to the real
 * producer, and the checks a hostile client would try first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProducer, type RunningProducer } from '../../src/producer/server.js';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { createLogger } from '../../src/shared/runtime/logger.js';
import { testLogger } from '../helpers/log.js';
import { sandbox, TEST_TOKEN, type Sandbox } from '../helpers/env.js';
import { rawRequest, serialize, type RawResponse, type RequestSpec } from '../helpers/raw-http.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const RUNS = 1_200;

let box: Sandbox;
let producer: RunningProducer;
let port: number;
const logLines: string[] = [];

beforeAll(async () => {
  // No worker: valid requests queue jobs and get their 202 after a short REQUEST_TIMEOUT.
  box = sandbox('fuzz', { REQUEST_TIMEOUT: '200', LOG_LEVEL: 'info' });
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  producer = await startProducer(box.config, createLogger(box.config, 'producer', 1, sink));
  port = Number(new URL(producer.url).port);
});

afterAll(async () => {
  await producer?.close();
  await box?.cleanup();
});

const send = (spec: RequestSpec) => rawRequest(port, serialize(spec));
const bearer = (token: string): [string, string] => ['Authorization', `Bearer ${token}`];
const json = (value: string): Pick<RequestSpec, 'headers' | 'body'> => ({
  headers: [['Content-Type', 'application/json']],
  body: Buffer.from(value),
});

function errorOf(res: RawResponse): { code: string; message: string } {
  const body = JSON.parse(res.body) as { success: unknown; error: { code: unknown; message: unknown } };
  expect(body.success, `${res.status} ${res.body}`).toBe(false);
  expect(Object.keys(body).sort()).toEqual(['error', 'success']);
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  return body.error as { code: string; message: string };
}

/** What must hold for any answer to any request. */
function checkAnswer(res: RawResponse, method: string): void {
  if (res.status >= 500) expect(res.status).toBe(503);
  expect(res.headers['x-content-type-options']).toEqual(['nosniff']);
  expect(res.headers['x-powered-by']).toBeUndefined();
  if (res.status >= 400 && method !== 'HEAD') {
    const error = errorOf(res);
    if (res.status === 503) expect(error.code).toBe('redis_unavailable');
  }
}

// ---- generators ------------------------------------------------------------------------------

const oddIds = fc.oneof(
  fc.constantFrom('-1', '0', '1e9', '1.5', '00001', '0x10', 'NaN', 'null', 'undefined', '[]', '{}', '%201', '１', '9'.repeat(40)),
  fc.constantFrom(
    '..%2F..%2Fetc%2Fpasswd',
    '../../etc/passwd',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '%00',
    '1%00',
    '%',
    '%zz',
    '%C0%AE',
    'backup-1;rm -rf',
  ),
  fc.integer({ min: -1e6, max: 1e12 }).map(String),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
);

const paths = fc.oneof(
  oddIds.map((id) => `/api/backups/${id}`),
  oddIds.map((id) => `/api/backups/${id}/verify`),
  oddIds.map((id) => `/api/backups/${id}/restore`),
  oddIds.map((id) => `/api/jobs/${id}`),
  fc.constantFrom(
    '/api/backups',
    '/api/backups/stats',
    '/api/backups/config',
    '/health',
    '/metrics',
    '/admin/queues',
    '/api',
    '/',
    '/api/backups/',
    '//api//backups',
    '/api/backups/1/verify/extra',
  ),
  fc
    .array(
      fc.tuple(
        fc.constantFrom('limit', 'offset', 'cursor', 'status', 'limit[]', 'x', '__proto__'),
        fc.oneof(oddIds, fc.constantFrom('completed', 'in_progress', '5', '1001', '')),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => `/api/backups?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  fc.webPath().map((p) => p || '/'),
);

// Weighted towards requests that get past the token and the content type, to reach validation.
const tokens = fc.oneof(
  fc.constant<[string, string][]>([]),
  { weight: 8, arbitrary: fc.constant<[string, string][]>([bearer(TEST_TOKEN)]) },
  fc.constant<[string, string][]>([bearer(TEST_TOKEN), bearer('garbage-garbage-garbage')]),
  fc.constant<[string, string][]>([bearer('garbage-garbage-garbage'), bearer(TEST_TOKEN)]),
  fc
    .constantFrom(
      'Bearer',
      'Bearer ',
      'bearer ' + TEST_TOKEN.toUpperCase(),
      `Basic ${Buffer.from(`x:${TEST_TOKEN}`).toString('base64')}`,
      `Bearer ${TEST_TOKEN} extra`,
      `Bearer ${TEST_TOKEN}x`,
      'Bearer \u00ff\u00fe',
    )
    .map((v): [string, string][] => [['Authorization', v]]),
  fc
    .string({ maxLength: 80 })
    .filter((s) => !/[\r\n]/.test(s))
    .map((s): [string, string][] => [bearer(s)]),
);

const contentTypes = fc.oneof(
  fc.constant<[string, string][]>([]),
  { weight: 4, arbitrary: fc.constant<[string, string][]>([['Content-Type', 'application/json']]) },
  fc
    .constantFrom(
      'application/json',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/jsonx',
      '*/*',
      '',
      'application/json, text/plain',
    )
    .map((v): [string, string][] => [['Content-Type', v]]),
  fc.constant<[string, string][]>([
    ['Content-Type', 'text/plain'],
    ['Content-Type', 'application/json'],
  ]),
);

const bodies = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)) },
  fc.json({ maxDepth: 3 }).chain((s) => fc.nat(s.length).map((n) => Buffer.from(s.slice(0, n)))), // cut short
  fc
    .constantFrom(
      '{"type":1}',
      '{"type":"manual","extra":true}',
      '{"type":"scheduled"}',
      '{"mode":"quick"}',
      '{"mode":["full"]}',
      '{"__proto__":{"type":"manual"}}',
      '{"constructor":{"prototype":{}}}',
      'null',
      '[]',
      '"manual"',
      '1e999',
      '{"autoBackupInterval":-1}',
      '{"maxBackups":1e308}',
      '{"autoBackupEnabled":"yes"}',
    )
    .map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.integer({ min: 16 * 1024, max: 300 * 1024 }).map((n) => Buffer.from(`{"type":"${'m'.repeat(n)}"}`)), // beyond BODY_LIMIT
  fc.integer({ min: 100, max: 5_000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))), // deep nesting
);

const extraHeaders = fc.array(
  fc.oneof(
    fc.constant<[string, string]>(['Prefer', 'respond-async']),
    fc.constant<[string, string]>(['Content-Encoding', 'gzip']),
    fc.constant<[string, string]>(['Content-Encoding', 'br']),
    fc.constant<[string, string]>(['Transfer-Encoding', 'chunked']),
    fc.constant<[string, string]>(['X-Forwarded-For', '10.0.0.1, ../../']),
    fc.constant<[string, string]>(['Host', 'evil.example']),
    fc.constant<[string, string]>(['Expect', '100-continue']),
    fc.tuple(
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
      fc.string({ maxLength: 60 }).filter((s) => !/[\r\n]/.test(s)),
    ),
  ),
  { maxLength: 3 },
);

const specs = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'G@T'),
  path: paths,
  auth: tokens,
  contentType: contentTypes,
  extra: extraHeaders,
  body: bodies,
  contentLength: fc.oneof(
    { weight: 8, arbitrary: fc.constant<string | undefined>(undefined) },
    { weight: 1, arbitrary: fc.constantFrom<string | undefined>('-1', 'abc', '1e3', '0', '1, 2') },
  ),
});

describe('fuzzing the API with malformed requests', () => {
  it(`answers ${RUNS} malformed requests without a 5xx (save a deliberate 503), a crash or a second error shape`, async () => {
    let runs = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(specs, async (s) => {
        runs++;
        const chunked = s.extra.some(([n]) => n === 'Transfer-Encoding');
        const chunks = s.body?.length ? [Buffer.from(`${s.body.length.toString(16)}\r\n`), s.body, Buffer.from('\r\n')] : [];
        const body = chunked ? Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]) : s.body;
        const spec: RequestSpec = {
          method: s.method,
          path: s.path,
          headers: [...s.auth, ...s.contentType, ...s.extra],
          body,
          contentLength: chunked ? null : s.contentLength,
        };
        const res = await send(spec);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        checkAnswer(res, s.method);
      }),
      // FUZZ_SEED=<the seed a failure printed> replays that run.
      { numRuns: RUNS, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
    );
    expect(runs).toBeGreaterThanOrEqual(1_000);
    // Still alive and well.
    const health = await send({ method: 'GET', path: '/health', headers: [] });
    expect(health.status).toBe(200);
    console.info(`fuzz: ${runs} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
  }, 300_000);

  it('enforces the body limit, with Content-Length and chunked', async () => {
    const big = Buffer.from(`{"type":"${'m'.repeat(64 * 1024)}"}`);
    for (const spec of [
      { method: 'POST', path: '/api/backups', headers: [bearer(TEST_TOKEN), ['Content-Type', 'application/json']], body: big },
      {
        method: 'POST',
        path: '/api/backups',
        headers: [bearer(TEST_TOKEN), ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']],
        body: Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]),
        contentLength: null,
      },
    ] as RequestSpec[]) {
      const res = await send(spec);
      expect(res.status).toBe(413);
      expect(errorOf(res).code).toBe('payload_too_large');
    }
  });

  it('answers each kind of bad input with its own 4xx and the one error shape', async () => {
    const cases: [RequestSpec, number, string][] = [
      [
        { method: 'POST', path: '/api/backups', headers: [bearer(TEST_TOKEN), ...json('{"type":').headers], body: json('{"type":').body },
        400,
        'invalid_json',
      ],
      [
        { method: 'POST', path: '/api/backups', headers: [bearer(TEST_TOKEN), ['Content-Type', 'text/plain']], body: Buffer.from('{}') },
        415,
        'unsupported_media_type',
      ],
      [
        {
          method: 'POST',
          path: '/api/backups',
          headers: [bearer(TEST_TOKEN), ...json('{"type":1}').headers],
          body: json('{"type":1}').body,
        },
        400,
        'invalid_body',
      ],
      [
        { method: 'POST', path: '/api/backups', headers: [bearer(TEST_TOKEN), ...json('[]').headers], body: json('[]').body },
        400,
        'invalid_body',
      ],
      [{ method: 'GET', path: '/api/backups', headers: [] }, 401, 'unauthorized'],
      [{ method: 'GET', path: '/api/backups', headers: [bearer('not-the-token-at-all')] }, 401, 'unauthorized'],
      [{ method: 'GET', path: '/api/backups', headers: [['Authorization', `Basic ${TEST_TOKEN}`]] }, 401, 'unauthorized'],
      [{ method: 'GET', path: '/api/backups?limit=abc', headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_query'],
      [{ method: 'GET', path: '/api/backups?status=a&status=b', headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_query'],
      [{ method: 'GET', path: '/api/jobs/..%2F..%2Fetc%2Fpasswd', headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_id'],
      [{ method: 'GET', path: '/api/backups/%', headers: [bearer(TEST_TOKEN)] }, 400, 'bad_request'],
      [{ method: 'GET', path: '/nowhere', headers: [] }, 404, 'not_found'],
      [
        { method: 'GET', path: '/api/backups', headers: [bearer(TEST_TOKEN)], body: Buffer.from('x'), contentLength: '1, 2' },
        400,
        'malformed_request',
      ],
      [{ method: 'G@T', path: '/api/backups', headers: [] }, 400, 'malformed_request'],
      [{ method: 'GET', path: '/health', headers: [['X-Big', 'x'.repeat(70_000)]] }, 431, 'headers_too_large'],
    ];
    for (const id of ['-1', '0', '1e9', '1.5', '..%2F..%2Fetc%2Fpasswd', '%00', 'abc', '99999999999999999999']) {
      cases.push([{ method: 'GET', path: `/api/backups/${id}`, headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_id']);
      cases.push([{ method: 'POST', path: `/api/backups/${id}/verify`, headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_id']);
      cases.push([{ method: 'POST', path: `/api/backups/${id}/restore`, headers: [bearer(TEST_TOKEN)] }, 400, 'invalid_id']);
    }
    for (const [spec, status, code] of cases) {
      const res = await send(spec);
      expect({ request: `${spec.method} ${spec.path}`, status: res.status, code: errorOf(res).code }).toEqual({
        request: `${spec.method} ${spec.path}`,
        status,
        code,
      });
      checkAnswer(res, spec.method);
    }
  });
});

describe('security', () => {
  it('never logs the token, whatever requests carried it', () => {
    const logs = logLines.join('');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toContain('"url":"/api/backups"'); // the requests were logged…
    expect(logs).not.toContain(TEST_TOKEN); // …without the token
    expect(logs).not.toMatch(/authorization/i);
  });

  it('keeps /metrics and /admin/queues closed to anyone without the token', async () => {
    for (const p of ['/metrics', '/admin/queues', '/admin/queues/api/queues']) {
      for (const headers of [[], [bearer('garbage-garbage-garbage')]] as [string, string][][]) {
        const res = await send({ method: 'GET', path: p, headers });
        expect([401, 404]).toContain(res.status);
        errorOf(res);
      }
    }
    // Opened with the right credentials, the board is served without announcing its framework.
    const board = await send({
      method: 'GET',
      path: '/admin/queues',
      headers: [['Authorization', `Basic ${Buffer.from(`ops:${TEST_TOKEN}`).toString('base64')}`]],
    });
    expect(board.status).toBe(200);
    expect(board.headers['x-powered-by']).toBeUndefined();
    expect(board.headers['x-content-type-options']).toEqual(['nosniff']);
  });

  it('sends the security headers of helmet on answers and errors alike', async () => {
    for (const spec of [
      { method: 'GET', path: '/health', headers: [] },
      { method: 'GET', path: '/api/backups', headers: [bearer(TEST_TOKEN)] },
      { method: 'GET', path: '/api/backups', headers: [] },
      { method: 'GET', path: '/nowhere', headers: [] },
    ] as RequestSpec[]) {
      const res = await send(spec);
      expect(res.headers['content-security-policy']?.[0]).toMatch(/default-src 'self'/);
      expect(res.headers['x-content-type-options']).toEqual(['nosniff']);
      expect(res.headers['x-frame-options']).toEqual(['SAMEORIGIN']);
      expect(res.headers['strict-transport-security']?.[0]).toMatch(/max-age=/);
      expect(res.headers['cross-origin-resource-policy']).toEqual(['same-origin']);
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('keeps BACKUP_DIR 0700 and every file in it 0600, and creates nothing from client input', async () => {
    const catalog = new Catalog(box.config.catalogPath);
    try {
      const row = await createBackup({ config: box.config, catalog, log: testLogger(box.config, 'test') }, { type: 'manual', jobId: null });
      expect(path.dirname(row.file_path)).toBe(box.config.backupDir);
    } finally {
      catalog.close();
    }
    expect(fs.statSync(box.config.backupDir).mode & 0o777).toBe(0o700);
    const names = fs.readdirSync(box.config.backupDir);
    for (const name of names)
      expect({ name, mode: (fs.statSync(path.join(box.config.backupDir, name)).mode & 0o777).toString(8) }).toEqual({ name, mode: '600' });
    // Only the service's own files: the catalog (and its WAL companions), the one backup and its manifest.
    const own = [
      /^backup-catalog\.db(-wal|-shm)?$/,
      /^workstation-backup-[\dT-]+\.db$/,
      /^\.workstation-backup-[\dT-]+\.db\.manifest\.json$/,
    ];
    expect(names.filter((n) => !own.some((re) => re.test(n)))).toEqual([]);
    expect(fs.readdirSync(box.dir).sort()).toEqual(
      ['backups', 'workstation.db', 'workstation.db-shm', 'workstation.db-wal'].filter((n) => fs.existsSync(path.join(box.dir, n))),
    );
  });
});
