import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { TEST_TOKEN, sandbox, type Sandbox } from '../helpers/env.js';
import { killAll, spawnTs } from '../helpers/processes.js';
import { auth, openCatalog, startTestProducer } from '../helpers/producer.js';
import { catalogDb } from '../helpers/catalog-db.js';

let box: Sandbox;
let producer: RunningProducer;
let catalog: Catalog;
const ROWS = 25_000;

beforeAll(async () => {
  box = sandbox('api');
  producer = await startTestProducer(box.config);
  catalog = openCatalog(box.config);
  // A large catalog, written directly: half completed (1 KiB each), every tenth failed.
  const db = catalogDb(catalog.file);
  const insert = db.prepare(
    `INSERT INTO backup_log (backup_type, file_path, file_size_bytes, started_at, completed_at, status, error_message, checksum)
     VALUES ('scheduled', ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) {
      const at = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
      const status = i % 10 === 0 ? 'failed' : i % 2 === 0 ? 'completed' : 'in_progress';
      insert.run(
        path.join(box.config.backupDir, `workstation-backup-${i}.db`),
        status === 'completed' ? 1024 : null,
        at,
        status === 'in_progress' ? null : at,
        status,
        status === 'failed' ? 'disk full' : null,
        status === 'completed' ? 'ab'.repeat(32) : null,
      );
    }
  })();
  db.close();
});

afterAll(async () => {
  catalog?.close();
  await producer?.close();
  await killAll();
  await box?.cleanup();
});

const api = () => request(producer.server);
const expectError = (res: request.Response, status: number, code?: string) => {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  expect(res.body).toEqual({ success: false, error: { code: code ?? expect.any(String), message: expect.any(String) } });
};

describe('authentication', () => {
  it.each([
    ['no header', {}],
    ['a wrong token', { Authorization: 'Bearer wrong-token-wrong-token' }],
    ['a token one character short', { Authorization: `Bearer ${TEST_TOKEN.slice(0, -1)}` }],
    ['another scheme', { Authorization: `Basic ${TEST_TOKEN}` }],
    ['an empty bearer', { Authorization: 'Bearer ' }],
  ])('answers 401 in the error shape for %s', async (_name, headers) => {
    for (const [method, url] of [
      ['get', '/api/backups'],
      ['post', '/api/backups'],
      ['get', '/api/backups/stats'],
      ['put', '/api/backups/config'],
      ['get', '/api/jobs/x'],
    ] as const) {
      const res = await api()[method](url).set(headers);
      expectError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });

  it('lets /health through without a token and shows no secret', async () => {
    const res = await api().get('/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toEqual(expect.stringMatching(/^(ok|degraded)$/));
    expect(JSON.stringify(res.body)).not.toContain(TEST_TOKEN);
  });

  it('sends security headers', async () => {
    const res = await api().get('/health');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});

describe('GET /api/backups', () => {
  it('answers the runbook shape with statistics computed over the whole catalog', async () => {
    const res = await api().get('/api/backups?limit=5').set(auth);
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.count).toBe(5);
    expect(res.body.total).toBe(ROWS);
    expect(res.body.backups[0]).toEqual({
      id: ROWS,
      fileName: `workstation-backup-${ROWS}.db`,
      fileSize: null,
      status: 'failed',
      startedAt: new Date(Date.UTC(2025, 0, 1) + ROWS * 60_000).toISOString(),
      backupType: 'scheduled',
      completedAt: expect.any(String),
    });
    const completed = ROWS / 2 - ROWS / 10;
    expect(res.body.statistics).toEqual({
      totalBackups: completed,
      totalSize: completed * 1024,
      oldestBackup: new Date(Date.UTC(2025, 0, 1) + 2 * 60_000).toISOString(),
      newestBackup: new Date(Date.UTC(2025, 0, 1) + (ROWS - 2) * 60_000).toISOString(),
      failedBackups: ROWS / 10,
    });
    const stats = await api().get('/api/backups/stats').set(auth);
    expect(stats.body).toEqual({ success: true, statistics: res.body.statistics });
  });

  it('walks every row exactly once with the cursor, newest first', async () => {
    const seen: number[] = [];
    let cursor: number | null = null;
    do {
      const res: request.Response = await api()
        .get(`/api/backups?limit=1000${cursor ? `&cursor=${cursor}` : ''}`)
        .set(auth);
      expect(res.status).toBe(200);
      seen.push(...res.body.backups.map((b: { id: number }) => b.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(ROWS);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
    expect(new Set(seen).size).toBe(ROWS);
  });

  it('pages with offset and filters by status', async () => {
    const res = await api().get('/api/backups?limit=3&offset=10&status=failed').set(auth);
    expect(res.body.backups.map((b: { id: number }) => b.id)).toEqual([ROWS - 100, ROWS - 110, ROWS - 120]);
  });

  it.each([['limit=0'], ['limit=1001'], ['limit=abc'], ['offset=-1'], ['cursor=0'], ['status=done'], ['sort=id']])(
    'answers 400 for ?%s',
    async (query) => {
      expectError(await api().get(`/api/backups?${query}`).set(auth), 400, 'invalid_query');
    },
  );
});

describe('GET /api/backups/:id', () => {
  it('answers the runbook fields for a backup', async () => {
    const res = await api().get('/api/backups/2').set(auth);
    expect(res.status).toBe(200);
    expect(res.body.backup).toMatchObject({
      id: 2,
      fileName: 'workstation-backup-2.db',
      filePath: path.join(box.config.backupDir, 'workstation-backup-2.db'),
      backupType: 'scheduled',
      fileSize: 1024,
      checksum: 'ab'.repeat(32),
      status: 'completed',
    });
  });

  it('answers 404 for an id that does not exist', async () => {
    expectError(
      await api()
        .get(`/api/backups/${ROWS + 1}`)
        .set(auth),
      404,
      'backup_not_found',
    );
    expectError(
      await api()
        .post(`/api/backups/${ROWS + 1}/verify`)
        .set(auth),
      404,
      'backup_not_found',
    );
  });

  it.each([['abc'], ['-1'], ['0'], ['1e9'], ['1.5'], ['%00'], ['..%2F..%2Fetc%2Fpasswd'], ['9999999999999999999']])(
    'answers 400 for the id %s',
    async (id) => {
      expectError(await api().get(`/api/backups/${id}`).set(auth), 400, 'invalid_id');
      expectError(await api().post(`/api/backups/${id}/verify`).set(auth), 400, 'invalid_id');
      expectError(await api().post(`/api/backups/${id}/restore`).set(auth), 400, 'invalid_id');
    },
  );
});

describe('POST /api/backups input', () => {
  it.each([
    ['an unknown type', { type: 'scheduled' }],
    ['an unknown field', { type: 'manual', force: true }],
    ['a wrong type', { type: 1 }],
    ['an array', [1, 2]],
    ['a string', 'manual'],
  ])('answers 400 for %s', async (_name, body) => {
    const res = await api().post('/api/backups').set(auth).set('Content-Type', 'application/json').send(JSON.stringify(body));
    expectError(res, 400, 'invalid_body');
  });

  it('answers 400 for broken JSON, 415 for another content type, 413 past the body limit', async () => {
    expectError(await api().post('/api/backups').set(auth).set('Content-Type', 'application/json').send('{"type":'), 400, 'invalid_json');
    expectError(await api().post('/api/backups').set(auth).set('Content-Type', 'text/plain').send('type=manual'), 415);
    expectError(
      await api()
        .post('/api/backups')
        .set(auth)
        .send({ type: 'x'.repeat(64 * 1024) }),
      413,
      'payload_too_large',
    );
  });
});

describe('backup configuration', () => {
  it('shows the settings in force', async () => {
    const res = await api().get('/api/backups/config').set(auth);
    expect(res.status).toBe(200);
    expect(res.body.config).toMatchObject({
      backupDir: box.config.backupDir,
      databasePath: box.config.databasePath,
      maxBackups: 10,
      autoBackupEnabled: false,
      autoBackupInterval: 86_400_000,
      compressionEnabled: false,
      nextScheduledBackup: null,
    });
  });

  it.each([
    ['an unknown field', { autoBackupEnabled: true, retention: 5 }],
    ['a string for a boolean', { autoBackupEnabled: 'true' }],
    ['an interval below the minimum', { autoBackupInterval: 10 }],
    ['an interval above the maximum', { autoBackupInterval: 10 ** 12 }],
    ['a fractional interval', { autoBackupInterval: 1500.5 }],
    ['maxBackups of 0', { maxBackups: 0 }],
    ['an empty object', {}],
  ])('answers 400 for %s and changes nothing', async (_name, body) => {
    expectError(await api().put('/api/backups/config').set(auth).send(body), 400);
    const res = await api().get('/api/backups/config').set(auth);
    expect(res.body.config).toMatchObject({ autoBackupEnabled: false, maxBackups: 10 });
  });

  it('stores a valid change', async () => {
    const res = await api().put('/api/backups/config').set(auth).send({ maxBackups: 7 });
    expect(res.status).toBe(200);
    expect(res.body.config.maxBackups).toBe(7);
    expect((await api().get('/api/backups/config').set(auth)).body.config.maxBackups).toBe(7);
  });
});

describe('other routes', () => {
  it('answers 404 in the error shape for unknown jobs and routes', async () => {
    expectError(await api().get('/api/jobs/backup-does-not-exist').set(auth), 404, 'job_not_found');
    expectError(await api().get('/api/nothing-here').set(auth), 404, 'not_found');
    expectError(await api().get('/nothing-here'), 404, 'not_found');
  });
});

describe('start-up', () => {
  it('refuses an invalid variable with one line naming it, its value and what was expected', () => {
    expect(() => parseConfig({ MAX_BACKUPS: 'zero' })).toThrow('Invalid MAX_BACKUPS="zero": expected a whole number from 1 to 100000');
    expect(() => parseConfig({ AUTO_BACKUP_ENABLED: 'maybe' })).toThrow('Invalid AUTO_BACKUP_ENABLED="maybe": expected true or false');
    expect(() => parseConfig({ AUTO_BACKUP_INTERVAL: '10' })).toThrow(/^Invalid AUTO_BACKUP_INTERVAL="10": expected at least 1000$/);
    expect(() => parseConfig({ API_TOKEN: 'short' })).toThrow('Invalid API_TOKEN=(hidden)');
  });

  it('exits non-zero with one clear line when the configuration is invalid', async () => {
    const proc = spawnTs('src/producer/server.ts', { ...box.env, MAX_BACKUPS: '-3' });
    const { code } = await proc.exited;
    expect(code).toBe(2);
    expect(proc.output().trim()).toBe('Invalid MAX_BACKUPS="-3": expected a whole number from 1 to 100000');
  });

  it('exits non-zero with one clear line when Redis is unreachable', async () => {
    const proc = spawnTs('src/producer/server.ts', { ...box.env, REDIS_URL: 'redis://127.0.0.1:6399' });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).msg).toMatch(/^Redis is unreachable at redis:\/\/127\.0\.0\.1:6399/);
  });

  it('generates a private token file on a first run without API_TOKEN, and never logs a token', async () => {
    const dir = path.join(box.dir, 'first-run');
    const env = { ...box.env, API_TOKEN: '', BACKUP_DIR: dir, LOG_LEVEL: 'debug', PORT: '0' };
    const proc = spawnTs('src/producer/server.ts', env);
    const listening = await proc.waitFor(/"url":"http:\/\/127\.0\.0\.1:\d+"/);
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(listening)![0];
    const tokenFile = path.join(dir, '.api-token');
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(proc.output()).toContain(tokenFile);

    expect((await fetch(`${url}/api/backups`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${url}/api/backups`, { headers: { Authorization: 'Bearer not-the-token-at-all' } })).status).toBe(401);
    await proc.stop();
    expect(proc.output()).not.toContain(token);
    expect(proc.output()).not.toContain('not-the-token-at-all');
    expect(proc.output()).toContain('/api/backups');
  });
});
