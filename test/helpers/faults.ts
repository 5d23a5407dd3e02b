import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import type { Config } from '../../src/shared/runtime/config.js';
import { QUEUE } from '../../src/shared/jobs/queues.js';
import { spawnTs, startWorkerProcess, type Proc } from './processes.js';
import { ACCOUNTS, INITIAL_BALANCE } from './workstation-db.js';

/**
 * A database shaped like the application's (accounts whose balances sum to a constant, a marker
 * row naming its version) padded with `mb` MB of random, incompressible blobs, so that a backup
 * takes long enough to be interrupted.
 */
export function createBulkyDb(file: string, mb: number, marker = 'original'): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
      CREATE TABLE marker (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL);
      CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
    `);
    db.transaction(() => {
      const account = db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?)');
      for (let i = 1; i <= ACCOUNTS; i++) account.run(i, INITIAL_BALANCE);
      db.prepare('INSERT INTO marker (id, value) VALUES (1, ?)').run(marker);
      const blob = db.prepare('INSERT INTO blobs (data) VALUES (randomblob(?))');
      for (let i = 0; i < mb * 4; i++) blob.run(256 * 1024);
    })();
  } finally {
    db.close();
  }
}

export function setMarker(file: string, value: string): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 30000');
    db.prepare('UPDATE marker SET value = ? WHERE id = 1').run(value);
  } finally {
    db.close();
  }
}

/** The marker, and a digest of every row, so two databases can be compared by content. */
export function contentOf(file: string): { marker: string; digest: string; integrity: string } {
  const db = new Database(file, { readonly: true });
  try {
    const hash = createHash('sha256');
    for (const table of ['accounts', 'marker', 'blobs']) {
      for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY id`).iterate()) {
        for (const v of Object.values(row as Record<string, unknown>)) hash.update(Buffer.isBuffer(v) ? v : String(v));
      }
    }
    return {
      marker: (db.prepare('SELECT value FROM marker WHERE id = 1').get() as { value: string }).value,
      digest: hash.digest('hex'),
      integrity: String(db.pragma('integrity_check', { simple: true })),
    };
  } finally {
    db.close();
  }
}

export const tempFiles = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.tmp-'));
export const backupFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('workstation-backup-'))
    .sort();

/** SHA-256 of a file, as the catalog stores it. */
export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The test's own view of the queues (read-only use), on its own connection. */
export function inspectQueues(config: Config, url = config.redisUrl) {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // the Redis-restart test takes it away on purpose
  const opts = { connection: redis, prefix: config.queuePrefix };
  const backup = new Queue(QUEUE.backup, opts);
  const restore = new Queue(QUEUE.restore, opts);
  const verify = new Queue(QUEUE.verify, opts);
  for (const queue of [backup, restore, verify]) queue.on('error', () => undefined);
  return {
    redis,
    backup,
    restore,
    verify,
    lockHolder: () => redis.get(`${config.queuePrefix}:lock:database`),
    async close() {
      await Promise.allSettled([backup.close(), restore.close(), verify.close()]);
      redis.disconnect();
    },
  };
}

/** Completed rows and the backup files on disk name the same files, and each file has its row's checksum. */
export function catalogMatchesFiles(
  dir: string,
  completed: { file_path: string; checksum: string | null; file_size_bytes: number | null }[],
): void {
  const onDisk = backupFiles(dir);
  const listed = completed.map((b) => path.basename(b.file_path)).sort();
  if (JSON.stringify(onDisk) !== JSON.stringify(listed)) {
    throw new Error(`catalog and files disagree:\n files: ${onDisk.join(', ')}\n rows:  ${listed.join(', ')}`);
  }
  for (const b of completed) {
    if (sha256(b.file_path) !== b.checksum) throw new Error(`${b.file_path}: checksum differs from its row`);
    if (fs.statSync(b.file_path).size !== b.file_size_bytes) throw new Error(`${b.file_path}: size differs from its row`);
  }
}

/** The producer as a process of its own, and the URL it listens on. */
export async function startProducerProcess(env: Record<string, string>): Promise<{ proc: Proc; url: string }> {
  const proc = spawnTs('src/producer/server.ts', { ...env, LOG_LEVEL: 'info' });
  const line = await proc.waitFor(/\{[^\n]*"producer listening"[^\n]*\}/, 120_000);
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

/** Whether an HTTP answer is one the API means to give: success, or the one error shape. */
export function isWellFormed(status: number, body: unknown): boolean {
  const b = body as { success?: unknown; status?: unknown; error?: { code?: unknown; message?: unknown } } | null;
  if (!b || typeof b !== 'object') return false;
  // /health has its own body, 503 with status "down" included.
  if (typeof b.status === 'string')
    return ['ok', 'degraded', 'down'].includes(b.status) && (status === 200 || (status === 503 && b.status === 'down'));
  if (status < 400) return b.success === true;
  return b.success === false && typeof b.error?.code === 'string' && typeof b.error?.message === 'string';
}

/**
 * A worker process, resolved once it takes jobs. Fault tests start several at once on a loaded
 * two-core machine, where loading the TypeScript sources alone can take many seconds.
 */
export function startWorker(env: Record<string, string>): Promise<Proc> {
  return startWorkerProcess(env, 120_000);
}
