import fsp from 'node:fs/promises';
import os, { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import type { BackupRow, Catalog } from '../shared/catalog/catalog.js';
import { loadConfig, type Config } from '../shared/runtime/config.js';
import { AppError, ConfigError, codeOf, messageOf, type ErrorCode } from '../shared/domain/errors.js';
import { failWhenTaken } from '../shared/locking/acquire.js';
import { DatabaseLock } from '../shared/locking/lock.js';
import { cliRunId } from '../shared/runtime/process-owner.js';
import type { LockedRun, OperationDeps, Reporter } from '../shared/operations/run.js';
import { createLogger, type Logger } from '../shared/runtime/logger.js';
import { producerRedis } from '../shared/runtime/redis.js';
import { openCatalog } from '../shared/operations/open-catalog.js';
import type { ReindexReport } from '../shared/operations/reindex.js';
import { CliError, EXIT, Output, type ExitCode } from './output.js';

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
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage, 'invalid_config', { cause: err });
    throw err;
  }
  const log = createLogger({ logLevel: opts.verbose ? 'info' : 'warn' }, 'cli', 2);
  return { config, log, out: new Output(Boolean(opts.json)) };
}

/**
 * `--from s3://bucket/prefix` (or a mirror directory's file:// URL): another bucket than the
 * configured mirror, read alone. The catalog is rebuilt from it into a temp directory (nothing of
 * this host's BACKUP_DIR or catalog is read or changed) and removed afterwards.
 */
export async function withBucket<T>(ctx: CliContext, from: string | undefined, fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  if (from === undefined) return fn(ctx);
  if (!/^(s3:\/\/[^/]+|file:\/\/\/)/.test(from)) {
    throw new CliError(`--from takes s3://bucket/prefix or file:///directory, not ${JSON.stringify(from)}`, EXIT.usage, 'bad_request');
  }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'workstation-backup-from-'));
  const mirrorDir = from.startsWith('file:') ? fileURLToPath(from) : undefined;
  const config: Config = Object.freeze({
    ...ctx.config,
    mirrorUrl: mirrorDir ? pathToFileURL(mirrorDir).href : from.replace(/\/+$/, ''),
    mirrorDir,
    backupDir: path.join(dir, 'backups'),
    catalogPath: path.join(dir, 'catalog.db'),
  });
  try {
    return await fn({ ...ctx, config });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The catalog, rebuilt from the manifests first when it is missing. */
export async function withCatalog<T>(ctx: CliContext, fn: (catalog: Catalog, rebuilt?: ReindexReport) => Promise<T>): Promise<T> {
  let opened: Awaited<ReturnType<typeof openCatalog>>;
  try {
    opened = await openCatalog(ctx.config, ctx.log);
  } catch (err) {
    if (/SQLITE_(NOTADB|CORRUPT)/.test(codeOf(err) ?? '')) {
      throw new CliError(
        `the catalog ${ctx.config.catalogPath} is damaged (${messageOf(err)}); rebuild it with: workstation-backup reindex`,
        EXIT.failed,
        'catalog_damaged',
        { cause: err },
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

/**
 * Runs `fn` with what the shared operations need: the Redis half of the database lock when Redis
 * answers (so workers see it), none when it does not (the local file lock then guards alone).
 */
export async function withOperationDeps<T>(ctx: CliContext, catalog: Catalog, fn: (deps: OperationDeps) => Promise<T>): Promise<T> {
  const redis = await reachableRedis(ctx.config);
  try {
    const redisLock = redis ? new DatabaseLock(redis, ctx.config.queuePrefix, catalog, ctx.config.lockTtl) : undefined;
    return await fn({ config: ctx.config, catalog, log: ctx.log, redisLock });
  } finally {
    redis?.disconnect();
  }
}

/**
 * This CLI run as an operation's run: another holder of the lock is exit code 3 at once,
 * progress goes to `update` (the progress bar), notes to stderr.
 */
export function cliRun(ctx: CliContext, what: string, progress: Reporter['progress'], bytes?: Reporter['bytes']): LockedRun {
  return {
    runId: cliRunId(what),
    holder: `cli:${hostname()}:${process.pid}`,
    whenTaken: failWhenTaken,
    report: { progress, bytes, note: (message) => ctx.out.note(/[.!?]$/.test(message) ? message : `${message}.`) },
  };
}

/**
 * The exit codes of error codes a script may branch on, the CLI's counterpart of the producer's
 * status table. Their messages stand alone: they say why the operation could not run or what is
 * wrong with the backup, not how a run went wrong.
 */
const EXIT_BY_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  lock_held: EXIT.busy,
  lock_unavailable: EXIT.failed,
  backup_invalid: EXIT.invalid,
  // A moment the archive cannot reach is a target to change, as a malformed one is.
  outside_recovery_window: EXIT.usage,
  no_wal_archive: EXIT.notFound,
};

/** An operation's failure as the CLI reports it: a code of `EXIT_BY_CODE` its own exit code, the rest `<what> failed: …`. */
export function cliFailure(err: unknown, what: string): CliError {
  if (err instanceof CliError) return err;
  const code = err instanceof AppError ? err.code : undefined;
  const exit = code && EXIT_BY_CODE[code];
  if (code && exit !== undefined) return new CliError(messageOf(err), exit, code, { cause: err });
  return new CliError(`${what} failed: ${messageOf(err)}`, EXIT.failed, code ?? `${what}_failed`, { cause: err });
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
