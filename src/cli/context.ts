import { hostname } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { BackupRow, Catalog } from '../shared/catalog/catalog.js';
import { ConfigError, loadConfig, type Config } from '../shared/runtime/config.js';
import { FileLockUnavailable, allOf, tryFileLock } from '../shared/locking/file-lock.js';
import { DatabaseLock, type LockGuard } from '../shared/locking/lock.js';
import { createLogger, type Logger } from '../shared/observability/logger.js';
import { producerRedis } from '../shared/runtime/redis.js';
import { openCatalog, type ReindexReport } from '../shared/catalog/reindex.js';
import { CliError, EXIT, Output } from './output.js';

export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
}

export interface CliContext {
  config: Config;
  log: Logger;
  out: Output;
}

/** Reads the configuration; a bad variable is a usage error (exit 2). */
export function cliContext(opts: GlobalOptions): CliContext {
  let config: Config;
  try {
    // The CLI's stdout is its answer: logs go to stderr, and only warnings unless asked for more.
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage, 'invalid_config');
    throw err;
  }
  const log = createLogger({ logLevel: opts.verbose ? 'info' : 'warn' }, 'cli', 2);
  return { config, log, out: new Output(Boolean(opts.json)) };
}

/** The catalog, rebuilt from the manifests first when it is missing. */
export async function withCatalog<T>(ctx: CliContext, fn: (catalog: Catalog, rebuilt?: ReindexReport) => Promise<T>): Promise<T> {
  let opened: Awaited<ReturnType<typeof openCatalog>>;
  try {
    opened = await openCatalog(ctx.config, ctx.log);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (/SQLITE_(NOTADB|CORRUPT)/.test(code)) {
      throw new CliError(
        `the catalog ${ctx.config.catalogPath} is damaged (${(err as Error).message}); rebuild it with: workstation-backup reindex`,
        EXIT.failed,
        'catalog_damaged',
      );
    }
    throw err;
  }
  const rebuilt = opened.rebuilt;
  if (rebuilt && (rebuilt.imported.length || rebuilt.withoutManifest.length)) {
    ctx.out.note(
      `The catalog was missing; rebuilt it from ${rebuilt.imported.length} manifest(s)` +
        (rebuilt.withoutManifest.length ? `; ${rebuilt.withoutManifest.length} backup file(s) have no manifest (see: reindex).` : '.'),
    );
  }
  try {
    return await fn(opened.catalog, opened.rebuilt);
  } finally {
    opened.catalog.close();
  }
}

/** Redis when it answers within a second, otherwise null: the CLI never waits for it. */
async function reachableRedis(config: Config): Promise<Redis | null> {
  const redis = producerRedis(config.redisUrl, undefined, { lazyConnect: true, connectTimeout: 1_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    if ((await redis.ping()) === 'PONG') return redis;
  } catch {
    // Down or unreachable: the local lock alone guards the database.
  }
  redis.disconnect();
  return null;
}

export interface HeldCliLock {
  guard: LockGuard;
  /** `redis+file` when Redis answered, `file` when it did not. */
  via: 'redis+file' | 'file';
}

/**
 * Runs `fn` holding the database lock: the Redis lock when Redis answers (so workers see it),
 * and always the local file lock (so a worker that comes up meanwhile waits). Another holder is
 * exit code 3, never a wait that could hang a script.
 */
export async function withDatabaseLock<T>(ctx: CliContext, catalog: Catalog, fn: (lock: HeldCliLock) => Promise<T>): Promise<T> {
  const holder = `cli:${hostname()}:${process.pid}`;
  const redis = await reachableRedis(ctx.config);
  try {
    const dbLock = redis ? new DatabaseLock(redis, ctx.config.queuePrefix, catalog, ctx.config.lockTtl) : undefined;
    const held = dbLock ? await dbLock.tryAcquire(holder, { fence: 'later' }) : undefined;
    if (dbLock && !held) {
      throw new CliError(
        `another backup or restore is running (${(await dbLock.holder()) ?? 'unknown holder'}); try again when it has finished`,
        EXIT.busy,
        'lock_held',
      );
    }
    try {
      // Without Redis, the local lock takes a fencing value of its own as it is granted.
      let local: Awaited<ReturnType<typeof tryFileLock>>;
      try {
        local = await tryFileLock(ctx.config, holder, held ? undefined : catalog);
      } catch (err) {
        if (!(err instanceof FileLockUnavailable)) throw err;
        if (!held) throw new CliError(`${err.message}; with Redis down there is no other lock to hold`, EXIT.failed, 'lock_unavailable');
        ctx.out.note(`${err.message}; holding the Redis lock only.`);
        held.takeFence();
        return await fn({ guard: held, via: 'redis+file' });
      }
      if (!local.lock)
        throw new CliError(
          `another backup or restore is running (${local.holder}); try again when it has finished`,
          EXIT.busy,
          'lock_held',
        );
      if (!redis) ctx.out.note('Redis is not reachable: holding the local lock only.');
      try {
        // With Redis, the grant takes its fencing value only now that it holds both locks.
        held?.takeFence();
        return await fn({ guard: held ? allOf(held, local.lock) : local.lock, via: held ? 'redis+file' : 'file' });
      } finally {
        await local.lock.release();
      }
    } finally {
      await held?.release();
    }
  } finally {
    redis?.disconnect();
  }
}

/** A backup named by its id, its file's path or its file name. */
export function findBackup(catalog: Catalog, target: string): BackupRow {
  const row = /^\d+$/.test(target)
    ? catalog.getBackup(Number(target))
    : (catalog.getBackupByFile(path.resolve(target)) ?? catalog.getBackupByFile(path.basename(target)));
  if (!row) {
    throw new CliError(
      `no backup ${JSON.stringify(target)} in the catalog (if the catalog was lost, run: workstation-backup reindex)`,
      EXIT.notFound,
      'backup_not_found',
    );
  }
  return row;
}
