/**
 * A bucket that is stopped, missing or refusing never fails the local backup: the copy is recorded
 * as failed with a reason a person can act on, /health degrades, one alert goes out per outage, and
 * the next backup after the bucket is back catches up every missing copy from the catalog. The
 * server is a real s3rver process, killed with SIGKILL (between backups and in the middle of a
 * multipart upload) and started again on the same port and data.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { createBulkyDb, sha256, startProducerProcess } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { S3Server } from '../helpers/s3.js';
import { useStack } from '../helpers/stack.js';
import { WebhookReceiver } from '../helpers/webhook.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const PREFIX = 'workstation';

let s3: S3Server;
let hook: WebhookReceiver;
/** Sandboxes of the tests' own CLI runs (no stack: the CLI works with Redis down). */
const boxes: Sandbox[] = [];

beforeAll(async () => {
  s3 = await S3Server.start({ record: true });
  hook = await WebhookReceiver.start();
});

afterAll(async () => {
  await hook?.close();
  await s3?.cleanup();
  for (const b of boxes) await b.cleanup();
});

/** The producer as a process of its own: the SDK takes its credentials from the process's environment. */
const stack = useStack('s3-outage', {
  env: () => ({ BACKUP_MIRROR_TIMEOUT: '5000', ...s3.env(PREFIX), ALERT_WEBHOOK_URL: hook.url }),
  producer: 'process',
});

interface Made {
  id: number;
  filePath: string;
  fileName: string;
  checksum: string;
  status: string;
}

async function backupNow(): Promise<Made> {
  const res = await request(stack.producer.url).post('/api/backups').set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.backup as Made;
}

type CopyRow = { backup_id: number; status: string; error_message: string | null };

function copyRows(catalogPath: string): CopyRow[] {
  return withCatalogDb(catalogPath, (db) =>
    db.prepare("SELECT backup_id, status, error_message FROM backup_copy WHERE location = 'mirror' ORDER BY backup_id").all(),
  ) as CopyRow[];
}

const copyOf = (catalogPath: string, id: number) => copyRows(catalogPath).find((r) => r.backup_id === id);

async function health() {
  return (await request(stack.producer.url).get('/health').set(auth)).body as {
    status: string;
    problems: string[];
    storage: { mirror: Record<string, unknown> & { failed: { backupId: number; error: string | null }[] } };
  };
}

/** /health caches its probes for a few seconds: wait for an answer that has seen the change. */
const healthWhen = (what: string, ok: (h: Awaited<ReturnType<typeof health>>) => boolean) =>
  waitUntil(what, async () => {
    const h = await health();
    return ok(h) ? h : null;
  });

/** Each backup and its manifest is in the bucket, the backup with its catalog checksum. */
async function inBucket(made: Made[], prefix = PREFIX): Promise<void> {
  const keys = await s3.keys(`${prefix}/`);
  for (const b of made) {
    expect(keys).toContain(`${prefix}/${b.fileName}`);
    expect(keys).toContain(`${prefix}/.${b.fileName}.manifest.json`);
    expect(await s3.sha256(`${prefix}/${b.fileName}`)).toBe(b.checksum);
  }
}

describe('a bucket that is stopped', () => {
  it('does not fail local backups; /health degrades, one alert per outage, and the next backup catches up', async () => {
    const first = await backupNow();
    expect(copyOf(stack.box.config.catalogPath, first.id)).toMatchObject({ status: 'ok' });

    await s3.stop();
    const missed = [await backupNow(), await backupNow()];
    for (const b of missed) {
      expect(b.status).toBe('completed');
      expect(sha256(b.filePath)).toBe(b.checksum);
      const copy = copyOf(stack.box.config.catalogPath, b.id);
      expect(copy?.status).toBe('failed');
      expect(copy?.error_message).toContain(`endpoint ${s3.endpoint} unreachable`);
    }
    const list = await runCli({ ...stack.box.env, REDIS_URL: REDIS_DOWN }, 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = new Map((list.json.backups as { id: number; mirror: string }[]).map((b) => [b.id, b.mirror]));
    expect(listed.get(first.id)).toBe('ok');
    for (const b of missed) expect(listed.get(b.id)).toBe('failed');

    const down = await healthWhen('/health to see the bucket gone', (h) => h.status === 'degraded' && h.storage.mirror.writable === false);
    expect(
      down.problems.some((p) => /mirror/i.test(p)),
      JSON.stringify(down.problems),
    ).toBe(true);
    expect(down.storage.mirror).toMatchObject({ configured: true, location: `s3://${s3.bucket}/${PREFIX}`, writable: false, missing: 2 });
    expect(down.storage.mirror.failed.map((f) => f.backupId)).toEqual(expect.arrayContaining(missed.map((b) => b.id)));

    // One alert for the outage, not one per failed copy.
    await waitUntil('the mirror alert', () => hook.of('mirror.failed').length >= 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(hook.of('mirror.failed')).toHaveLength(1);
    expect(String(hook.of('mirror.failed')[0]!.body.reason)).toContain('unreachable');

    await s3.start();
    const mark = s3.requests.length;
    const next = await backupNow();
    // Caught up from the catalog: no listing of the bucket.
    expect(s3.lists(s3.requests.slice(mark))).toEqual([]);
    await inBucket([first, ...missed, next]);
    for (const b of [first, ...missed, next]) expect(copyOf(stack.box.config.catalogPath, b.id)).toMatchObject({ status: 'ok' });

    const up = await healthWhen(
      '/health to see the bucket back',
      (h) => h.storage.mirror.writable === true && h.storage.mirror.missing === 0,
    );
    expect(up.status, JSON.stringify(up.problems)).toBe('ok');
    expect(up.storage.mirror).toMatchObject({ missing: 0, failed: [] });

    // A second outage is a second alert.
    await s3.stop();
    const again = await backupNow();
    expect(copyOf(stack.box.config.catalogPath, again.id)?.status).toBe('failed');
    await waitUntil('the second outage alert', () => hook.of('mirror.failed').length === 2);
    await s3.start();
    await inBucket([again, await backupNow()]);
  });
});

describe('a bucket that refuses', () => {
  it('missing: the backup completes and the copy fails with "bucket <name> does not exist"', async () => {
    const b = sandbox('s3-nobucket');
    boxes.push(b);
    createWorkstationDb(b.config.databasePath, { sizeMb: 1 });
    const env = { ...b.env, ...s3.env(PREFIX), BACKUP_MIRROR_URL: `s3://no-such-bucket/${PREFIX}`, REDIS_URL: REDIS_DOWN };
    const r = await runCli(env, 'backup', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.backup.status).toBe('completed');
    expect(copyOf(b.config.catalogPath, r.json.backup.id as number)).toMatchObject({
      status: 'failed',
      error_message: expect.stringContaining('bucket no-such-bucket does not exist'),
    });
    const list = await runCli(env, 'list', '--json');
    expect(list.json.backups[0].mirror).toBe('failed');
  });

  it('wrong credentials: the copy fails with "access denied …(check AWS_ACCESS_KEY_ID)", and the secret shows nowhere', async () => {
    const b = sandbox('s3-denied');
    boxes.push(b);
    createWorkstationDb(b.config.databasePath, { sizeMb: 1 });
    const secret = `not-the-secret-${randomBytes(8).toString('hex')}`;
    const env = {
      ...b.env,
      ...s3.env('denied'),
      AWS_ACCESS_KEY_ID: 'NOT-S3RVER',
      AWS_SECRET_ACCESS_KEY: secret,
      LOG_LEVEL: 'debug',
      REDIS_URL: REDIS_DOWN,
    };
    const r = await runCli(env, 'backup', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.backup.status).toBe('completed');
    const copy = copyOf(b.config.catalogPath, r.json.backup.id as number);
    expect(copy).toMatchObject({ status: 'failed' });
    expect(copy!.error_message).toContain(`access denied for s3://${s3.bucket}/denied (check AWS_ACCESS_KEY_ID)`);
    const list = await runCli(env, 'list', '--json');
    expect(list.json.backups[0].mirror).toBe('failed');

    // What the service shows of it: /health with the token, /metrics, the producer's logs.
    const denied = await startProducerProcess({ ...env, REDIS_URL: b.env.REDIS_URL! });
    try {
      const h = (await request(denied.url).get('/health').set(auth)).body as {
        status: string;
        problems: string[];
        storage: { mirror: { failed: unknown[] } };
      };
      expect(h.status).toBe('degraded');
      expect(
        h.problems.some((p) => /mirror/i.test(p)),
        JSON.stringify(h.problems),
      ).toBe(true);
      expect(JSON.stringify(h.storage.mirror.failed)).toContain('access denied');
      const metrics = await request(denied.url).get('/metrics').set(auth);
      expect(metrics.status).toBe(200);
      const everything = [
        r.stdout,
        r.stderr,
        list.stdout,
        list.stderr,
        JSON.stringify(h),
        metrics.text,
        denied.proc.output(),
        JSON.stringify(copyRows(b.config.catalogPath)),
      ];
      for (const text of everything) expect(text).not.toContain(secret);
    } finally {
      await denied.proc.stop();
    }
  });
});

describe('a bucket that hangs', () => {
  it('is given up after BACKUP_MIRROR_TIMEOUT per request: the backup completes, the copy fails naming the endpoint', async () => {
    const b = sandbox('s3-hung', { BACKUP_MIRROR_TIMEOUT: '1000' });
    boxes.push(b);
    createWorkstationDb(b.config.databasePath, { sizeMb: 1 });
    const env = { ...b.env, ...s3.env('hung'), REDIS_URL: REDIS_DOWN };
    s3.pause();
    const started = Date.now();
    let r;
    try {
      // Bounded here too, so that a copy that hangs fails this test instead of the ones after it.
      r = await Promise.race([runCli(env, 'backup', '--json'), new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000))]);
    } finally {
      s3.resume();
    }
    if (!r) throw new Error('the backup did not finish within 30 s with the bucket hung (BACKUP_MIRROR_TIMEOUT=1000)');
    const took = Date.now() - started;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.backup.status).toBe('completed');
    // A few bounded attempts, not the SDK's default of waiting for ever.
    expect(took).toBeLessThan(20_000);
    const copy = copyOf(b.config.catalogPath, r.json.backup.id as number);
    expect(copy).toMatchObject({ status: 'failed', error_message: expect.stringContaining(s3.endpoint) });
    expect(copy!.error_message).toMatch(/did not answer|timed? ?out/i);
  });
});

describe('retention while the bucket is away', () => {
  it('deletes the bucket copy later, once the bucket is back', async () => {
    const b = sandbox('s3-retention', { MAX_BACKUPS: '1' });
    boxes.push(b);
    createWorkstationDb(b.config.databasePath, { sizeMb: 1 });
    const prefix = 'retention';
    const env = { ...b.env, ...s3.env(prefix), REDIS_URL: REDIS_DOWN };
    const backup = async () => {
      const r = await runCli(env, 'backup', '--json');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return r.json as { backup: Made; retentionDeleted: number[] };
    };

    const first = (await backup()).backup;
    expect(await s3.keys(`${prefix}/`)).toEqual([`${prefix}/${first.fileName}`, `${prefix}/.${first.fileName}.manifest.json`].sort());

    await s3.stop();
    let second: { backup: Made; retentionDeleted: number[] };
    try {
      second = await backup();
    } finally {
      await s3.start();
    }
    // Retention removed the first backup here; its bucket copy could not be deleted then.
    expect(second.retentionDeleted).toEqual([first.id]);
    expect(await s3.exists(`${prefix}/${first.fileName}`)).toBe(true);

    const third = await backup();
    expect(third.retentionDeleted).toEqual([second.backup.id]);
    expect(await s3.keys(`${prefix}/`)).toEqual(
      [`${prefix}/${third.backup.fileName}`, `${prefix}/.${third.backup.fileName}.manifest.json`].sort(),
    );
    expect(await s3.sha256(`${prefix}/${third.backup.fileName}`)).toBe(third.backup.checksum);
  });
});

describe('a bucket stopped in the middle of a multipart upload', () => {
  it('the local backup completes, the copy fails; after the restart the next backup uploads both, no partial object listed', async () => {
    const b = sandbox('s3-midupload', { BACKUP_MIRROR_TIMEOUT: '5000' });
    boxes.push(b);
    createBulkyDb(b.config.databasePath, 120);
    const prefix = 'midupload';
    const env = { ...b.env, ...s3.env(prefix), REDIS_URL: REDIS_DOWN };

    const from = s3.requests.length;
    const running = runCli(env, 'backup', '--json');
    const part = await s3.waitForRequest(new RegExp(`^PUT /${s3.bucket}/${prefix}/workstation-backup-[^ ]*[?&]partNumber=`), 60_000, from);
    await s3.stop();
    const first = await running;
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const cut = first.json.backup as Made;
    expect(part).toContain(cut.fileName);
    expect(cut.status).toBe('completed');
    expect(sha256(cut.filePath)).toBe(cut.checksum);
    expect(copyOf(b.config.catalogPath, cut.id)).toMatchObject({ status: 'failed', error_message: expect.stringContaining('unreachable') });

    await s3.start();
    const second = await runCli(env, 'backup', '--json');
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const next = second.json.backup as Made;
    const both = [cut, next];
    expect(await s3.keys(`${prefix}/`)).toEqual(
      both.flatMap((m) => [`${prefix}/${m.fileName}`, `${prefix}/.${m.fileName}.manifest.json`]).sort(),
    );
    for (const m of both) {
      expect(await s3.sha256(`${prefix}/${m.fileName}`)).toBe(m.checksum);
      expect(copyOf(b.config.catalogPath, m.id)).toMatchObject({ status: 'ok', error_message: null });
    }
  }, 120_000);
});
