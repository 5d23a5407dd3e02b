/**
 * An S3-compatible bucket as the mirror (BACKUP_MIRROR_URL=s3://…), against a real S3-protocol
 * server (s3rver) behind a proxy that records each request: every backup and its manifest land
 * in the bucket with the catalog's checksum, without listing the bucket per backup; retention
 * deletes there too; verify and restore read the bucket's copy when the local one is damaged;
 * a 200 MB backup goes up in parts with the CLI's memory bounded.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/shared/domain/errors.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createBulkyDb, sha256 } from '../helpers/faults.js';
import { auth } from '../helpers/producer.js';
import { S3Server } from '../helpers/s3.js';
import { useStack } from '../helpers/stack.js';
import { integrity, query, writeMarker } from '../helpers/workstation-db.js';
import { ROOT } from '../helpers/root.js';

const PREFIX = 'workstation';

let s3: S3Server;
/** Sandboxes of the tests' own CLI runs (no stack: the CLI works with Redis down). */
const boxes: Sandbox[] = [];

beforeAll(async () => {
  s3 = await S3Server.start({ record: true });
});

afterAll(async () => {
  await s3?.cleanup();
  for (const b of boxes) await b.cleanup();
  fs.rmSync(outDir, { recursive: true, force: true });
});

/** The producer as a process of its own: the SDK takes its credentials from the process's environment. */
const stack = useStack('s3-mirror', { env: () => ({ MAX_BACKUPS: '2', ...s3.env(PREFIX) }), producer: 'process' });

const outDir = path.join(ROOT, `.build-test-s3-${process.pid}`);

/** `tsc` into a directory of this test's own; the compiled CLI's entry point. */
function compiledCli(): string {
  try {
    execFileSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--outDir', outDir, '--sourceMap', 'false'],
      {
        cwd: ROOT,
        stdio: 'pipe',
      },
    );
  } catch (err) {
    // Type errors elsewhere in a tree being edited still emit JavaScript; a missing entry point is what fails.
    if (!fs.existsSync(path.join(outDir, 'cli/main.js'))) throw err;
  }
  return path.join(outDir, 'cli/main.js');
}

interface Made {
  id: number;
  filePath: string;
  fileName: string;
  checksum: string;
}

async function backupNow(): Promise<Made> {
  const res = await request(stack.producer.url).post('/api/backups').set(auth);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.backup as Made;
}

const key = (fileName: string, prefix = PREFIX) => `${prefix}/${fileName}`;
const manifestKey = (fileName: string, prefix = PREFIX) => `${prefix}/.${fileName}.manifest.json`;

function copyRows(catalogPath: string): { backup_id: number; status: string; error_message: string | null }[] {
  return withCatalogDb(catalogPath, (db) =>
    db.prepare("SELECT backup_id, status, error_message FROM backup_copy WHERE location = 'mirror' ORDER BY backup_id").all(),
  ) as { backup_id: number; status: string; error_message: string | null }[];
}

describe('BACKUP_MIRROR_URL=s3://bucket/prefix', () => {
  it('is a configuration error together with BACKUP_MIRROR_DIR, naming both', async () => {
    const both = { ...stack.box.env, BACKUP_MIRROR_DIR: path.join(stack.box.dir, 'elsewhere') };
    expect(() => parseConfig(both)).toThrow(ConfigError);
    expect(() => parseConfig(both)).toThrow(/BACKUP_MIRROR_DIR[\s\S]*BACKUP_MIRROR_URL|BACKUP_MIRROR_URL[\s\S]*BACKUP_MIRROR_DIR/);
    const cli = await runCli({ ...both, REDIS_URL: REDIS_DOWN }, 'list', '--json');
    expect(cli.code).not.toBe(0);
    expect(cli.stdout + cli.stderr).toMatch(/BACKUP_MIRROR_DIR/);
    expect(cli.stdout + cli.stderr).toMatch(/BACKUP_MIRROR_URL/);
  });

  it('receives every backup and its manifest with the catalog checksum, without a LIST per backup; retention deletes there too', async () => {
    const mark = s3.requests.length;
    const made: Made[] = [];
    for (let i = 0; i < 3; i++) made.push(await backupNow());
    const during = s3.requests.slice(mark);
    // The copies are known from the catalog: nothing lists the bucket to take a backup.
    expect(s3.lists(during)).toEqual([]);

    const kept = made.slice(1);
    expect(await s3.keys(`${PREFIX}/`)).toEqual(kept.flatMap((b) => [key(b.fileName), manifestKey(b.fileName)]).sort());
    for (const b of kept) {
      expect(await s3.sha256(key(b.fileName))).toBe(b.checksum);
      expect(sha256(b.filePath)).toBe(b.checksum);
      const local = fs.readFileSync(path.join(stack.box.config.backupDir, `.${b.fileName}.manifest.json`), 'utf8');
      expect(await s3.text(manifestKey(b.fileName))).toBe(local);
    }
    // MAX_BACKUPS=2: the oldest is gone from the bucket, its manifest too.
    expect(await s3.exists(key(made[0]!.fileName))).toBe(false);
    expect(await s3.exists(manifestKey(made[0]!.fileName))).toBe(false);
    expect(during.some((l) => l.startsWith(`DELETE /${s3.bucket}/${key(made[0]!.fileName)}`))).toBe(true);

    expect(copyRows(stack.box.config.catalogPath).filter((r) => kept.some((b) => b.id === r.backup_id))).toEqual(
      kept.map((b) => ({ backup_id: b.id, status: 'ok', error_message: null })),
    );
    const list = await runCli({ ...stack.box.env, REDIS_URL: REDIS_DOWN }, 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = new Map((list.json.backups as { id: number; mirror: string }[]).map((b) => [b.id, b.mirror]));
    for (const b of kept) expect(listed.get(b.id)).toBe('ok');

    const health = await request(stack.producer.url).get('/health').set(auth);
    expect(health.body.storage.mirror).toMatchObject({
      configured: true,
      location: `s3://${s3.bucket}/${PREFIX}`,
      writable: true,
      copies: 2,
      missing: 0,
      failed: [],
    });
    expect(health.body.status, JSON.stringify(health.body.problems)).toBe('ok');
  });

  it('verify and restore read the bucket copy when the local file is damaged', async () => {
    writeMarker(stack.box.config.databasePath, 'kept');
    const backup = await backupNow();
    writeMarker(stack.box.config.databasePath, 'changed');
    // One byte changed in the middle of the local file.
    const fd = fs.openSync(backup.filePath, 'r+');
    const at = Math.floor(fs.fstatSync(fd).size / 2);
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, at);
    fs.writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
    fs.closeSync(fd);
    expect(sha256(backup.filePath)).not.toBe(backup.checksum);

    const offline = { ...stack.box.env, REDIS_URL: REDIS_DOWN };
    const v = await runCli(offline, 'verify', String(backup.id), '--json');
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.json).toMatchObject({ valid: true, source: 'mirror', copies: { primary: { valid: false, message: 'checksum mismatch' } } });

    const api = await request(stack.producer.url).post(`/api/backups/${backup.id}/verify`).set(auth);
    expect(api.body.valid, JSON.stringify(api.body)).toBe(true);

    const r = await runCli(offline, 'restore', String(backup.id), '--yes', '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(query<{ v: string }>(stack.box.config.databasePath, 'SELECT v FROM marker').v).toBe('kept');
    expect(integrity(stack.box.config.databasePath)).toBe('ok');
  });

  it('uploads a 200 MB backup in parts, with the compiled CLI process under 200 MB of resident memory', async () => {
    const big = sandbox('s3-big');
    boxes.push(big);
    const env = { ...big.env, ...s3.env('big'), REDIS_URL: REDIS_DOWN };
    createBulkyDb(big.config.databasePath, 200);

    // Measured on the compiled CLI, as a deployment runs it: run from the TypeScript sources, the
    // same backup peaks some 35 MB higher with tsx's transpiler, which no deployment carries.
    const cli = compiledCli();
    const mark = s3.requests.length;
    // Spawned here rather than through runCli: the test needs the pid to read its memory.
    const child = spawn(process.execPath, [cli, 'backup', '--json'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // VmHWM is the process's peak so far: the last reading before it exits covers the whole run.
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // exited between two readings
      }
    }, 25);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearInterval(poll);
    expect(code, stdout + stderr).toBe(0);
    const backup = (JSON.parse(stdout) as { backup: Made }).backup;
    expect(fs.statSync(backup.filePath).size).toBeGreaterThan(200 * 1024 * 1024);

    const objectPath = `/${s3.bucket}/${key(backup.fileName, 'big')}`;
    const during = s3.requests.slice(mark).filter((l) => l.includes(`${objectPath}?`));
    expect(during.filter((l) => l.startsWith(`POST ${objectPath}?uploads`))).toHaveLength(1);
    expect(during.filter((l) => /[?&]partNumber=\d+/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(await s3.sha256(key(backup.fileName, 'big'))).toBe(backup.checksum);
    expect(copyRows(big.config.catalogPath)).toEqual([{ backup_id: backup.id, status: 'ok', error_message: null }]);

    expect(peakKb, `peak resident memory ${Math.round(peakKb / 1024)} MB`).toBeGreaterThan(0);
    expect(peakKb * 1024, `peak resident memory ${Math.round(peakKb / 1024)} MB`).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);
});
