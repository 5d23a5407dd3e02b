/**
 * What the producer trusts and answers: an empty or loose API token file, the details `/health`
 * shows to anyone, disk probes under a flood or on a hung mount, and big bodies sent to a closed door.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireAnyBearer, requireBasic, requireBearer } from '../../src/producer/auth.js';
import { CachedProbe } from '../../src/producer/probe-cache.js';
import type { RunningProducer } from '../../src/producer/server.js';
import { DRAIN_LIMIT } from '../../src/producer/unread-body.js';
import { resolveApiToken } from '../../src/shared/runtime/api-token.js';
import { REDIS_URL, sandbox, TEST_TOKEN, waitUntil, type Sandbox } from '../helpers/env.js';
import { killAll, spawnTs } from '../helpers/processes.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { parseResponse, serialize, type RequestSpec } from '../helpers/raw-http.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const modeOf = (file: string) => fs.statSync(file).mode & 0o777;

afterAll(async () => {
  await killAll();
});

describe('the API token file', () => {
  let box: Sandbox;
  beforeAll(() => {
    box = sandbox('trust-token');
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  /** The real producer with API_TOKEN unset, its token file in `dir`. */
  function producerOn(dir: string) {
    return spawnTs('src/producer/server.ts', { ...box.env, API_TOKEN: '', BACKUP_DIR: dir, LOG_LEVEL: 'info', PORT: '0' });
  }

  it('an empty file (what a full disk leaves) is replaced by a new token, and an empty password opens nothing', async () => {
    const dir = path.join(box.dir, 'empty');
    fs.mkdirSync(dir, { mode: 0o700 });
    const tokenFile = path.join(dir, '.api-token');
    fs.writeFileSync(tokenFile, '', { mode: 0o644 });

    const proc = producerOn(dir);
    const listening = await proc.waitFor(/"url":"http:\/\/127\.0\.0\.1:\d+"/);
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(listening)![0];
    try {
      const token = fs.readFileSync(tokenFile, 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(modeOf(tokenFile)).toBe(0o600);
      const warning = proc
        .output()
        .split('\n')
        .find((l) => l.includes('was empty'));
      expect(JSON.parse(warning!)).toMatchObject({ level: 40, tokenFile });
      expect(proc.output()).not.toContain(token);

      // `curl -u 'x:'`: the board's API, reading and adding a restore job.
      for (const [method, p] of [
        ['get', '/admin/queues/api/queues'],
        ['post', '/admin/queues/api/queues/restore/add'],
      ] as const) {
        for (const header of [basic('x', ''), basic('', ''), 'Basic Og==', 'Basic ', 'Bearer ', 'Bearer']) {
          const call =
            method === 'get'
              ? request(url).get(p)
              : request(url)
                  .post(p)
                  .send({ name: 'restore', data: { backupId: 1 } });
          const res = await call.set('Authorization', header);
          expect({ header, status: res.status }).toEqual({ header, status: 401 });
          expect(res.body.error.code).toBe('unauthorized');
        }
      }
      expect((await request(url).get('/api/backups').set('Authorization', 'Bearer ')).status).toBe(401);
      const restores = new Queue('restore', { connection: { host: '127.0.0.1', port: 6379 }, prefix: box.prefix });
      try {
        expect(await restores.count()).toBe(0);
      } finally {
        await restores.close();
      }
      // The new token opens both doors.
      expect((await request(url).get('/admin/queues/api/queues').set('Authorization', basic('x', token))).status).toBe(200);
      expect((await request(url).get('/api/backups').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    } finally {
      await proc.stop();
    }
  });

  it('a token file holding a token under 16 characters stops the start with one line naming the file', async () => {
    const dir = path.join(box.dir, 'short');
    fs.mkdirSync(dir, { mode: 0o700 });
    const tokenFile = path.join(dir, '.api-token');
    fs.writeFileSync(tokenFile, 'hunter2\n', { mode: 0o600 });
    const proc = producerOn(dir);
    const { code } = await proc.exited;
    expect(code).toBe(1);
    const lines = proc.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).msg).toBe(
      `API token file ${tokenFile} holds a token of 7 characters, fewer than 16: write a longer one (openssl rand -base64 32), or delete the file to have one generated`,
    );
    expect(proc.output()).not.toContain('hunter2');
    expect(fs.readFileSync(tokenFile, 'utf8')).toBe('hunter2\n');
  });

  it('a token file others can read is set to 0600, with a warning naming it', () => {
    const tokenFile = path.join(box.dir, 'loose-token');
    fs.writeFileSync(tokenFile, `${'k'.repeat(40)}\n`, { mode: 0o644 });
    fs.chmodSync(tokenFile, 0o644);
    const resolved = resolveApiToken({ apiToken: undefined, apiTokenFile: tokenFile });
    expect(resolved).toMatchObject({ token: 'k'.repeat(40), source: 'file' });
    expect(modeOf(tokenFile)).toBe(0o600);
    expect(resolved.warnings).toEqual([`API token file ${tokenFile} was readable by other users (mode 0644): set it to 0600`]);
    // Once private, nothing more to say.
    expect(resolveApiToken({ apiToken: undefined, apiTokenFile: tokenFile }).warnings).toEqual([]);
  });

  it('a file of spaces or NUL bytes counts as empty; one with a space inside a token is refused', () => {
    for (const blank of ['   \n', '\0'.repeat(64)]) {
      const tokenFile = path.join(box.dir, 'blank-token');
      fs.writeFileSync(tokenFile, blank, { mode: 0o600 });
      const resolved = resolveApiToken({ apiToken: undefined, apiTokenFile: tokenFile });
      expect(resolved.source).toBe('generated');
      expect(resolved.token).toMatch(/^[\w-]{43}$/);
      expect(fs.readFileSync(tokenFile, 'utf8')).toBe(`${resolved.token}\n`);
      fs.rmSync(tokenFile);
    }
    const spaced = path.join(box.dir, 'spaced-token');
    fs.writeFileSync(spaced, 'correct horse battery staple\n', { mode: 0o600 });
    expect(() => resolveApiToken({ apiToken: undefined, apiTokenFile: spaced })).toThrow(`API token file ${spaced} holds spaces`);
    // No temp files left beside them.
    expect(fs.readdirSync(box.dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('the guards cannot be built with an empty or short token', () => {
    for (const token of ['', ' ', 'short', ' '.repeat(20), `${'a'.repeat(10)} ${'b'.repeat(10)}`]) {
      expect(() => requireBearer(token)).toThrow(/at least 16 characters/);
      expect(() => requireBasic(token, 'realm')).toThrow(/at least 16 characters/);
      expect(() => requireAnyBearer([TEST_TOKEN, token])).toThrow(/at least 16 characters/);
    }
  });
});

describe('GET /health to anyone and to the token holder', () => {
  let box: Sandbox;
  let producer: RunningProducer;
  let store: string;

  beforeAll(async () => {
    const base = sandbox('trust-health', { LOG_LEVEL: 'silent' });
    store = path.join(base.dir, 'store');
    // The catalog lives apart, so that BACKUP_DIR can break under a running producer.
    box = Object.assign(base, base.with({ BACKUP_DIR: path.join(store, 'backups'), CATALOG_PATH: path.join(base.dir, 'catalog.db') }));
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    producer = await startTestProducer(box.config);
  });
  afterAll(async () => {
    await producer?.close();
    await box?.cleanup();
  });

  it('with BACKUP_DIR broken, is degraded, shows states only without the token, and the error with its path to the token holder', async () => {
    // A file where a directory is expected: every probe of BACKUP_DIR fails with ENOTDIR.
    fs.rmSync(store, { recursive: true });
    fs.writeFileSync(store, 'not a directory');

    const open = await request(producer.server).get('/health');
    expect(open.status).toBe(200);
    expect(open.body).toEqual({
      status: 'degraded', // no worker runs in this file
      timestamp: expect.any(String),
      redis: { reachable: true },
      database: { reachable: true },
      workers: { anyAlive: false },
      backups: { overdue: false },
      disk: { enoughForNextBackup: null },
      storage: { primary: { writable: false }, mirror: { configured: false } },
      wal: { enabled: false, running: false, ok: true },
    });
    const text = JSON.stringify(open.body);
    for (const secret of [box.dir, box.config.backupDir, box.config.databasePath, 'ENOTDIR', 'mkdir', TEST_TOKEN, REDIS_URL]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain('/');

    const detailed = await request(producer.server).get('/health').set(auth);
    expect(detailed.status).toBe(200);
    expect(detailed.body).toMatchObject({
      status: 'degraded',
      problems: [
        'BACKUP_DIR cannot be written: no backup can be taken until it is fixed',
        'no worker process is alive: queued jobs will wait',
      ],
      database: { reachable: true, journalMode: 'wal' },
      workers: { alive: 0 },
      disk: { freeBytes: null },
      backups: { overdue: false, failedBackups: 0 },
    });
    expect(detailed.body.database.sizeBytes).toBeGreaterThan(0);
    expect(detailed.body.storage.primary.writable).toBe(false);
    expect(detailed.body.storage.primary.detail).toMatch(/^ENOTDIR: not a directory, mkdir '.*\/store\/backups'$/);

    const wrong = await request(producer.server).get('/health').set('Authorization', 'Bearer not-the-token-at-all');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ success: false, error: { code: 'unauthorized', message: 'invalid API token' } });
  });
});

describe('disk probes behind /health', () => {
  let box: Sandbox;
  let producer: RunningProducer;
  let mirror: string;
  // Also run from afterAll: a test that times out skips its own finally, and a hung mount left
  // behind would hang the producer's shutdown and the removal of the sandbox.
  let unmount: (() => void) | undefined;

  beforeAll(async () => {
    box = sandbox('trust-probe');
    mirror = path.join(box.dir, 'mirror');
    fs.mkdirSync(mirror, { mode: 0o700 });
    Object.assign(box, box.with({ BACKUP_MIRROR_DIR: mirror }));
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    producer = await startTestProducer(box.config);
  });
  afterAll(async () => {
    unmount?.();
    await producer?.close();
    await box?.cleanup();
  });

  it('a flood of requests writes one probe file per directory, and every request is answered from it', async () => {
    const probes = new Map<string, Set<string>>();
    const watchers = [box.config.backupDir, mirror].map((dir) => {
      probes.set(dir, new Set());
      return fs.watch(dir, (_event, name) => {
        if (name?.startsWith('.tmp-probe-')) probes.get(dir)!.add(name);
      });
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          request(producer.server)
            .get('/health')
            .set(i % 2 ? auth : {}),
        ),
      );
      for (let i = 0; i < 10; i++) answers.push(await request(producer.server).get('/health'));
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.body.storage.primary.writable).toBe(true);
        expect(a.body.storage.mirror.writable).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 200)); // the last inotify events
    } finally {
      for (const w of watchers) w.close();
    }
    expect([...probes.values()].map((names) => names.size)).toEqual([1, 1]);
    // Nothing left behind.
    for (const dir of [box.config.backupDir, mirror]) expect(fs.readdirSync(dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('a mirror on a mount that never answers is reported unknown within the bound, and does not stall the rest', async () => {
    // A FUSE mount whose server never answers: every call on it blocks, as on a hung network mount.
    const fuse = fs.openSync('/dev/fuse', 'r+');
    const mounted = spawnSync('mount', ['-i', '-t', 'fuse', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'hung', mirror], {
      stdio: ['ignore', 'pipe', 'pipe', fuse],
    });
    unmount = () => {
      spawnSync('umount', ['-l', mirror]);
      fs.closeSync(fuse); // the kernel then fails the calls still waiting on the mount
      unmount = undefined;
    };
    expect(mounted.status, `mount: ${mounted.stderr}`).toBe(0);
    try {
      await new Promise((r) => setTimeout(r, 5_500)); // the cached probe results expire
      for (let i = 0; i < 8; i++) {
        const started = Date.now();
        const open = await request(producer.server).get('/health');
        const detailed = await request(producer.server).get('/health').set(auth);
        expect(Date.now() - started).toBeLessThan(2 * 3_000);
        expect(open.status).toBe(200);
        expect(open.body.storage).toEqual({
          primary: { writable: true },
          mirror: { configured: true, writable: null, upToDate: true },
        });
        expect(detailed.body.storage.mirror).toMatchObject({ writable: null, detail: 'no answer within 1500 ms' });
        expect(detailed.body.storage.primary).toMatchObject({ writable: true, detail: 'writable' });
        // After the cache time, the primary is probed again: file operations still have threads.
        if (i === 3) await new Promise((r) => setTimeout(r, 5_500));
      }
      expect((await request(producer.server).get('/health').set(auth)).body.disk.freeBytes).toBeGreaterThan(0);

      // However often a hung disk is asked about, one call waits on it: libuv has four threads for
      // every file operation of the process, and the others must stay free.
      const hung = new CachedProbe(() => fs.promises.stat(path.join(mirror, 'x')).then(() => 'answered'), { ttlMs: 0, timeoutMs: 50 });
      for (let i = 0; i < 10; i++) expect(await hung.read()).toEqual({ answered: false, limitMs: 50 });
      const elsewhere = await Promise.race([
        fs.promises.stat(box.config.databasePath).then(() => 'answered'),
        new Promise((r) => setTimeout(() => r('stalled'), 3_000)),
      ]);
      expect(elsewhere).toBe('answered');
    } finally {
      unmount?.();
    }
  }, 60_000);
});

/** Sends a request's body in 64 KiB writes, as a client on a network would, and notes any socket error. */
function sendPaced(port: number, bytes: Buffer, timeoutMs = 20_000): Promise<{ data: Buffer; error: string | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error });
    });
    void (async () => {
      for (let at = 0, n = 0; at < bytes.length && !socket.destroyed; at += 65_536, n++) {
        await new Promise<void>((done) => socket.write(bytes.subarray(at, at + 65_536), () => done()));
        if (n % 4 === 3) await new Promise((r) => setTimeout(r, 1));
      }
    })();
  });
}

describe('a big body sent where it is not wanted', () => {
  let box: Sandbox;
  let producer: RunningProducer;
  let port: number;

  beforeAll(async () => {
    box = sandbox('trust-body', { LOG_LEVEL: 'silent' });
    createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
    producer = await startTestProducer(box.config);
    port = Number(new URL(producer.url).port);
  });
  afterAll(async () => {
    await producer?.close();
    await box?.cleanup();
  });

  it('gets its 401, 413 or 415 every time, never a reset', async () => {
    const body = Buffer.alloc(3_000_000, 'x');
    const json: [string, string] = ['Content-Type', 'application/json'];
    const form: [string, string] = ['Content-Type', 'application/x-www-form-urlencoded']; // what curl -d sends
    const kinds: [string, [string, string][], number, string][] = [
      ['wrong token, JSON', [['Authorization', 'Bearer not-the-token-at-all'], json], 401, 'unauthorized'],
      ['wrong token, form', [['Authorization', 'Bearer not-the-token-at-all'], form], 401, 'unauthorized'],
      ['good token, JSON', [['Authorization', `Bearer ${TEST_TOKEN}`], json], 413, 'payload_too_large'],
      ['good token, form', [['Authorization', `Bearer ${TEST_TOKEN}`], form], 415, 'unsupported_media_type'],
    ];
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const [kind, headers] = kinds[i % kinds.length]!;
      const spec: RequestSpec = { method: 'POST', path: '/api/backups', headers, body };
      const { data, error } = await sendPaced(port, serialize(spec));
      let got: string;
      try {
        const res = parseResponse(data);
        got = `${res.status} ${(JSON.parse(res.body) as { error: { code: string } }).error.code}${error ? ` then ${error}` : ''}`;
      } catch {
        got = `no answer (${error ?? 'closed'})`;
      }
      const key = `${kind}: ${got}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(outcomes)).toEqual(Object.fromEntries(kinds.map(([k, , s, c]) => [`${k}: ${s} ${c}`, 100])));
  }, 180_000);

  it('a client that stops sending its body still gets its answer once the drain time is up', async () => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    const closed = new Promise((r) => socket.on('close', r));
    socket.on('error', () => undefined);
    socket.write(
      'POST /api/backups HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer not-the-token-at-all\r\n' +
        'Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n{"type":',
    );
    await waitUntil('the answer', () => chunks.length > 0, DRAIN_LIMIT.ms + 5_000);
    const res = parseResponse(Buffer.concat(chunks));
    expect(res.status).toBe(401);
    expect(res.headers.connection).toEqual(['close']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(DRAIN_LIMIT.ms - 100);
    await closed;
  }, 30_000);
});
