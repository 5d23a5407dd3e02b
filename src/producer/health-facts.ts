import fs from 'node:fs/promises';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { BackupRow, Catalog, Statistics } from '../shared/catalog/catalog.js';
import { codeOf } from '../shared/domain/errors.js';
import type { Config } from '../shared/runtime/config.js';
import { liveWorkers, type Heartbeat } from '../shared/observability/heartbeat-registry.js';
import { currentSettings } from '../shared/catalog/settings.js';
import type { HealthFacts } from './health-rules.js';
import { cachedProbe } from './probe-cache.js';

export interface Observed {
  facts: HealthFacts;
  workers: Heartbeat[];
  lastBackup: BackupRow | undefined;
  statistics: Statistics;
}

function within<T>(ms: number, promise: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.catch(() => fallback),
    new Promise<T>((resolve) => {
      timer = setTimeout(() => resolve(fallback), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Opens the live database read-only and reads its journal mode. On this thread: it takes well
 * under a millisecond, where starting a SQLite thread per probe took hundreds under load. A busy
 * timeout of 0 means a lock held by the application is answered at once (the file is there,
 * its mode unknown for now), never waited for.
 */
function probeDatabase(file: string): { reachable: boolean; journalMode: string | null } {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
    return { reachable: true, journalMode: String(db.pragma('journal_mode', { simple: true })) };
  } catch (err) {
    return { reachable: codeOf(err) === 'SQLITE_BUSY', journalMode: null };
  } finally {
    db?.close();
  }
}

async function sizeOf(file: string): Promise<number> {
  return fs.stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** The disk facts: cached and bounded (see probe-cache.ts), as the disk may hang or be asked in a flood. */
async function diskFacts(config: Config): Promise<{ databaseBytes: number | null; freeBytes: number | null }> {
  const probed = await cachedProbe(`disk\0${config.databasePath}\0${config.backupDir}`, async () => {
    const [main, wal, free] = await Promise.all([
      sizeOf(config.databasePath),
      sizeOf(`${config.databasePath}-wal`),
      fs.statfs(config.backupDir).catch(() => null),
    ]);
    return { databaseBytes: main + wal, freeBytes: free ? free.bavail * free.bsize : null };
  }).read();
  return probed.answered ? probed.value : { databaseBytes: null, freeBytes: null };
}

/**
 * Looks at everything `/health`, `/metrics` and the watchdog judge by. Each probe is bounded, so
 * a hung Redis or a locked database makes the answer worse, never late.
 */
export async function observe(deps: { config: Config; catalog: Catalog; redis: Redis; startedAt: Date }): Promise<Observed> {
  const { config, catalog, redis } = deps;
  const redisUp = await within(
    1_000,
    redis.ping().then((r) => r === 'PONG'),
    false,
  );
  const described = probeDatabase(config.databasePath);
  const [workers, disk] = await Promise.all([
    redisUp ? within(1_000, liveWorkers(redis, config.queuePrefix), null) : Promise.resolve(null),
    diskFacts(config),
  ]);
  const settings = currentSettings(config, catalog);
  const lastBackup = catalog.lastSuccessfulBackup();
  const lastSuccessAt = lastBackup?.completed_at ? new Date(lastBackup.completed_at) : null;
  const databaseSize = described.reachable ? disk.databaseBytes : null;
  const facts: HealthFacts = {
    now: new Date(),
    redisUp,
    database: { ...described, sizeBytes: databaseSize },
    workersAlive: workers ? workers.length : null,
    autoBackupEnabled: settings.autoBackupEnabled,
    autoBackupInterval: settings.autoBackupInterval,
    lastSuccessAt,
    watchingSince: deps.startedAt,
    freeBytes: disk.freeBytes,
    // The snapshot is written whole first; compressing keeps it beside the packed file until done.
    neededBytes: databaseSize === null ? null : databaseSize * (config.compression === 'none' ? 1 : 2),
    databaseDamage: catalog.databaseDamage()?.message ?? null,
  };
  return { facts, workers: workers ?? [], lastBackup, statistics: catalog.statistics() };
}
