import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { tryFileLock } from '../../src/shared/locking/file-lock.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { killAll, spawnTs, startWorkerProcess } from '../helpers/processes.js';
import { auth, startTestProducer } from '../helpers/producer.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, createWorkstationDb, integrity, query, writeMarker } from '../helpers/workstation-db.js';

let box: Sandbox;
/** The CLI's environment with Redis down: nothing listens on its port. */
let offline: Record<string, string>;
/** The backup that `restore --latest-valid` falls back to. */
let olderId: number;

beforeAll(() => {
  box = sandbox('cli', { LOCK_TTL: '3000' });
  offline = { ...box.env, REDIS_URL: REDIS_DOWN };
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
});

afterAll(async () => {
  await killAll();
  await box?.cleanup();
});

const setMarker = (value: string) => writeMarker(box.config.databasePath, value);

const marker = (file = box.config.databasePath) => query<{ v: string }>(file, 'SELECT v FROM marker').v;

function catalogRows() {
  const catalog = new Catalog(box.config.catalogPath);
  try {
    return catalog
      .listBackups({ limit: 1000 })
      .map((b) => ({ id: b.id, type: b.backup_type, checksum: b.checksum, file: b.file_path, status: b.status, size: b.file_size_bytes }));
  } finally {
    catalog.close();
  }
}

function removeCatalog(): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(box.config.catalogPath + suffix, { force: true });
}

describe('the CLI with Redis down and no service running', () => {
  it('answers --help for every command, and exit code 2 for bad usage', async () => {
    for (const cmd of ['list', 'backup', 'verify', 'restore', 'reindex', 'stats']) {
      let help = '';
      const program = buildProgram(() => undefined)
        .exitOverride()
        .configureOutput({ writeOut: (s) => (help += s) });
      for (const sub of program.commands) sub.exitOverride().configureOutput({ writeOut: (s) => (help += s) });
      await expect(program.parseAsync(['node', 'workstation-backup', cmd, '--help'])).rejects.toMatchObject({ exitCode: 0 });
      expect(help).toMatch(new RegExp(`Usage: workstation-backup ${cmd}`));
    }
    const help = await runCli(offline, '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:/);
    expect((await runCli(offline, 'restore')).code).toBe(2);
    expect((await runCli(offline, 'frobnicate')).code).toBe(2);
    expect((await runCli({ ...offline, BACKUP_COMPRESSION: 'lz4' }, 'list')).code).toBe(2);
    const missing = await runCli(offline, 'verify', '999', '--json');
    expect(missing.code).toBe(4);
    expect(missing.json.error.code).toBe('backup_not_found');
  });

  it('restore --latest-valid skips a corrupted newest backup, restores the one before it into a damaged database', async () => {
    setMarker('older');
    const older = await runCli(offline, 'backup', '--json');
    expect(older.code).toBe(0);
    setMarker('newer');
    const newer = await runCli(offline, 'backup', '--json');
    expect(newer.code).toBe(0);
    olderId = older.json.backup.id as number;
    const newerId = newer.json.backup.id as number;
    expect(newerId).toBeGreaterThan(olderId);

    // Damage the newest backup in the middle, and the live database's header: the application
    // would not start.
    const fd = fs.openSync(newer.json.backup.filePath, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, 8192);
    fs.closeSync(fd);
    const live = fs.openSync(box.config.databasePath, 'r+');
    fs.writeSync(live, Buffer.from('this is not a database header'), 0, 29, 0);
    fs.closeSync(live);
    expect(() => integrity(box.config.databasePath)).toThrow();

    const r = await runCli(offline, 'restore', '--latest-valid', '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.backupId).toBe(olderId);
    expect(r.json.skipped).toEqual([{ backupId: newerId, reason: expect.stringMatching(/checksum mismatch/) }]);
    expect(r.json.lock).toBe('file');
    expect(r.json.restore.status).toBe('completed');

    expect(integrity(box.config.databasePath)).toBe('ok');
    expect(marker()).toBe('older');
    expect(balanceSum(box.config.databasePath)).toBe(ACCOUNTS * INITIAL_BALANCE);
    // The damaged file is kept, not thrown away.
    const aside = fs
      .readdirSync(box.dir)
      .filter((n) => n.startsWith('workstation.db.damaged-') && !n.endsWith('-wal') && !n.endsWith('-shm'));
    expect(aside).toHaveLength(1);
    expect(r.json.restore.errorMessage).toContain(aside[0]);

    // The catalog records what the CLI found: the newest backup invalid, the older one valid.
    const list = await runCli(offline, 'list', '--json');
    const byId = new Map((list.json.backups as { id: number; lastVerification: { valid: boolean } }[]).map((b) => [b.id, b]));
    expect(byId.get(newerId)!.lastVerification.valid).toBe(false);
    expect(byId.get(olderId)!.lastVerification.valid).toBe(true);

    // verify names the failing check and exits 5.
    const v = await runCli(offline, 'verify', String(newerId), '--json');
    expect(v.code).toBe(5);
    expect(v.json).toMatchObject({ valid: false, message: 'checksum mismatch' });
  });

  it('restores a healthy live database after a safety backup, found by file name', async () => {
    setMarker('current');
    const target = catalogRows().find((b) => b.id === olderId)!;
    const r = await runCli(offline, 'restore', path.basename(target.file), '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    const safetyId = r.json.restore.safetyBackupId as number;
    expect(safetyId).toEqual(expect.any(Number));
    const safety = catalogRows().find((b) => b.id === safetyId)!;
    expect(safety.type).toBe('pre-migration');
    // The safety backup holds the database as it was before the restore.
    expect(marker(safety.file)).toBe('current');
    expect(marker()).toBe('older');
  });

  it('reindex rebuilds a deleted catalog with the same ids, types and checksums; files without a manifest are listed', async () => {
    const before = catalogRows().filter((b) => b.status === 'completed');
    expect(before.length).toBeGreaterThanOrEqual(3);
    const stray = path.join(box.config.backupDir, 'workstation-backup-2020-01-01T00-00-00.db');
    fs.copyFileSync(before[0]!.file, stray);
    removeCatalog();

    const r = await runCli(offline, 'reindex', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.imported.sort()).toEqual(before.map((b) => b.id).sort());
    expect(r.json.withoutManifest).toEqual([stray]);
    expect(catalogRows().filter((b) => b.status === 'completed')).toEqual(before);
    fs.rmSync(stray);

    // A damaged catalog is moved aside and rebuilt the same way.
    fs.writeFileSync(box.config.catalogPath, 'garbage'.repeat(1000));
    for (const suffix of ['-wal', '-shm']) fs.rmSync(box.config.catalogPath + suffix, { force: true });
    expect((await runCli(offline, 'list')).code).toBe(1);
    const again = await runCli(offline, 'reindex', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.movedAside).toMatch(/backup-catalog\.db\.damaged-/);
    expect(catalogRows().filter((b) => b.status === 'completed')).toEqual(before);
  });

  it('a starting service rebuilds a missing catalog by itself', async () => {
    const before = catalogRows().filter((b) => b.status === 'completed');
    removeCatalog();
    const worker = await startWorkerProcess(box.env);
    try {
      expect(catalogRows().filter((b) => b.status === 'completed')).toEqual(before);
      // New backups continue after the highest id instead of reusing one.
      const r = await runCli(box.env, 'backup', '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.backup.id).toBeGreaterThan(Math.max(...before.map((b) => b.id)));
    } finally {
      await worker.stop();
    }
  });
});

describe('the database lock between the CLI and workers', () => {
  it('with Redis up, the CLI respects the Redis lock a worker holds', async () => {
    const holder = spawnTs('test/helpers/hold-lock.ts', box.env);
    try {
      await holder.waitFor(/held/);
      const r = await runCli(box.env, 'restore', String(olderId), '--yes', '--json');
      expect(r.code).toBe(3);
      expect(r.json.error).toMatchObject({ code: 'lock_held', message: expect.stringMatching(/test-holder/) });
    } finally {
      await holder.kill();
    }
  });

  it('a worker waits while the CLI holds the local lock; the CLI exits 3 while a holder has it', async () => {
    const held = await tryFileLock(box.config, 'cli:test-holder');
    if (!held.lock) throw new Error('expected the lock to be free');
    const worker = await startWorkerProcess(box.env);
    const producer = await startTestProducer(box.config);
    try {
      const busy = await runCli(offline, 'backup', '--json');
      expect(busy.code).toBe(3);
      expect(busy.json.error.message).toMatch(/cli:test-holder/);

      const before = catalogRows().length;
      const queued = await request(producer.server).post('/api/backups').set(auth).set('Prefer', 'respond-async');
      expect(queued.status).toBe(202);
      // The worker found the lock taken and put the job back to wait: no backup row was started.
      const job = await producer.deps.queues.backup.getJob(queued.body.jobId);
      await waitUntil('the worker to put the job back to wait', async () => (await job!.getState()) === 'delayed');
      expect(catalogRows().length).toBe(before);

      await held.lock.release();
      await waitUntil('the backup to run once the CLI let go', async () => (await job!.getState()) === 'completed');
      const rows = catalogRows();
      expect(rows.length).toBe(before + 1);
      expect(rows[0]).toMatchObject({ status: 'completed', type: 'manual' });
    } finally {
      await held.lock.release();
      await producer.close();
      await worker.stop();
    }
  });
});
