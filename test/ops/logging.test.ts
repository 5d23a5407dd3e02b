/**
 * What the services log when something fails: the background parts say which one spoke
 * (`component`), and a failure carries its error's type, code, message and stack, not only the
 * message. Real SQLite files, real Redis, a real worker process.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { QUEUE } from '../../src/shared/jobs/queues.js';
import { DatabaseLock } from '../../src/shared/locking/lock.js';
import { workerRedis } from '../../src/shared/runtime/redis.js';
import { Reaper } from '../../src/worker/reaper.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { testLogger } from '../helpers/log.js';
import { killAll, startWorkerProcess } from '../helpers/processes.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

interface LogLine {
  msg: string;
  component?: string;
  err?: { type?: string; code?: string; message?: string; stack?: string };
}

const lineSaying = (lines: string[], msg: string): LogLine | undefined =>
  lines.map((l) => JSON.parse(l) as LogLine).find((l) => l.msg === msg);

/** A stack as V8 writes it: the message, then at least one frame. */
const STACK = /\n\s+at \S/;

let box: Sandbox;

beforeAll(() => {
  box = sandbox('logging');
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
});

afterAll(async () => {
  await killAll();
  await box?.cleanup();
});

describe('a failure in a background part', () => {
  it('a mirror copy that fails is logged by the mirror, with the error and its stack; the backup completes', async () => {
    const notADirectory = path.join(box.dir, 'not-a-directory');
    fs.writeFileSync(notADirectory, 'a file where the mirror should be');
    const { config } = box.with({ BACKUP_MIRROR_DIR: path.join(notADirectory, 'mirror') });
    const seen: string[] = [];
    const catalog = new Catalog(config.catalogPath);
    try {
      const row = await createBackup({ config, catalog, log: testLogger(config, 'test', seen) }, { type: 'manual', jobId: null });
      expect(row.status).toBe('completed');
    } finally {
      catalog.close();
    }
    const line = lineSaying(seen, 'copying the backup to the mirror failed');
    expect(line, seen.join('')).toBeDefined();
    expect(line!.component).toBe('mirror');
    expect(line!.err).toMatchObject({ type: 'Error', code: 'ENOTDIR' });
    expect(line!.err!.stack).toMatch(STACK);
  });

  it('a reaper pass that meets a busy catalog is logged by the reaper, with the SQLite error and its stack', async () => {
    const catalog = new Catalog(box.config.catalogPath, { busyTimeout: 100 });
    const redis = workerRedis(box.config.redisUrl);
    const seen: string[] = [];
    const reaper = new Reaper({
      config: box.config,
      catalog,
      redis,
      lock: new DatabaseLock(redis, box.config.queuePrefix, catalog, box.config.lockTtl),
      log: testLogger(box.config, 'worker', seen),
      workerId: 'test-logging',
      stopping: false,
    });
    // Another process in the middle of a write: the hourly history pruning cannot get the catalog.
    const writer = new Database(box.config.catalogPath);
    writer.exec('BEGIN IMMEDIATE');
    try {
      await reaper.runOnce();
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
      await reaper.stop();
      catalog.close();
      redis.disconnect();
    }
    const line = lineSaying(seen, 'housekeeping failed; trying again on the next pass');
    expect(line, seen.join('')).toBeDefined();
    expect(line!.component).toBe('reaper');
    expect(line!.err).toMatchObject({ code: 'SQLITE_BUSY' });
    expect(line!.err!.stack).toMatch(STACK);
  });

  it("a worker process logs a failed job's error with its stack", async () => {
    const worker = await startWorkerProcess(box.env);
    const queue = new Queue(QUEUE.verify, { connection: { url: box.config.redisUrl }, prefix: box.config.queuePrefix });
    try {
      await queue.add('verify', { backupId: 999_999, mode: 'quick' });
      await worker.waitFor(/"msg":"job attempt failed".*\n/);
      const lines = worker
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'));
      const line = lineSaying(lines, 'job attempt failed');
      expect(line!.err!.message).toBe('backup 999999 does not exist');
      expect(line!.err!.stack).toMatch(STACK);
    } finally {
      await queue.close();
      expect(await worker.stop()).toBe(0);
    }
  });
});
