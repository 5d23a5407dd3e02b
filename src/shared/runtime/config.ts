import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { CompressionMode } from '../domain/backup-types.js';
import { ConfigError } from '../domain/errors.js';
import { verifyScheduleSchema } from '../domain/schedule-spec.js';
import { isInside } from './files.js';

/** Parses "true"/"false"/"1"/"0"/"yes"/"no"; anything else is a configuration error. */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `expected at least ${min}` })
        .max(max, { message: `expected at most ${max}` }),
    );

export const MIN_AUTO_BACKUP_INTERVAL = 1_000;
export const MAX_AUTO_BACKUP_INTERVAL = 30 * 24 * 3_600_000;
export const MIN_WAL_ARCHIVE_INTERVAL = 100;
export const MAX_WAL_ARCHIVE_INTERVAL = 3_600_000;
export const MIN_WAL_RETENTION = 60_000;
export const MAX_WAL_RETENTION = 3_650 * 86_400_000;

// `true` means gzip: the runbook's switch, and a format every machine can read without this tool.
const compression = z
  .enum(['false', 'true', 'none', 'gzip', 'zstd'], { message: 'expected false, true, gzip or zstd' })
  .transform((v): CompressionMode => (v === 'false' || v === 'none' ? 'none' : v === 'zstd' ? 'zstd' : 'gzip'));

/** A 256-bit key as base64 (standard or URL-safe alphabet). */
const KEY_BYTES = 32;
const isKey = (v: string) => /^[A-Za-z0-9+/_-]+={0,2}$/.test(v) && Buffer.from(v, 'base64').length === KEY_BYTES;
const key = z.string().refine(isKey, { message: `expected ${KEY_BYTES} bytes as base64 (openssl rand -base64 32)` });
const keyList = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
  )
  .refine((keys) => keys.every(isKey), { message: `expected a comma-separated list of ${KEY_BYTES}-byte base64 keys` });

const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/, { message: 'expected an http:// or https:// URL' });

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Every environment variable the service reads, with its default. The names and defaults of the
 * first six are the runbook's.
 */
const envSchema = z.object({
  BACKUP_DIR: z.string().min(1).default('./backups'),
  MAX_BACKUPS: int(1, 100_000).default(10),
  /** Safety backups (`pre-migration`) kept, counted apart from MAX_BACKUPS. */
  MAX_SAFETY_BACKUPS: int(1, 100_000).default(3),
  AUTO_BACKUP_ENABLED: bool.default(false),
  AUTO_BACKUP_INTERVAL: int(MIN_AUTO_BACKUP_INTERVAL, MAX_AUTO_BACKUP_INTERVAL).default(86_400_000),
  BACKUP_COMPRESSION: compression.default('none'),
  DATABASE_PATH: z.string().min(1).default('./workstation.db'),
  BACKUP_ENCRYPTION_KEY: key.optional(),
  BACKUP_ENCRYPTION_KEY_FILE: z.string().min(1).optional(),
  BACKUP_DECRYPTION_KEYS: keyList.optional(),
  BACKUP_MIRROR_DIR: z.string().min(1).optional(),
  /** The mirror as a URL: `s3://bucket/prefix` (an S3-compatible bucket) or `file:///dir`. */
  BACKUP_MIRROR_URL: z
    .string()
    .regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?|file:\/\/\/.+)$/, {
      message: 'expected s3://bucket/prefix or file:///absolute/directory',
    })
    .optional(),
  /** Bound on each request to the mirror (connect, and each wait for an answer or the next bytes). */
  BACKUP_MIRROR_TIMEOUT: int(100, 3_600_000).default(30_000),
  // The AWS SDK's own variables for where a bucket is; credentials stay with the SDK's default
  // chain (environment, profiles, instance roles) and are never read here.
  AWS_REGION: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_S3: httpUrl.optional(),
  AWS_ENDPOINT_URL: httpUrl.optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  CATALOG_PATH: z.string().min(1).optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, { message: 'expected a redis:// or rediss:// URL' })
    .default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, { message: 'expected letters, digits, _ . or -' })
    .default('workstation-backup'),
  PORT: int(0, 65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  API_TOKEN: z.string().min(16, { message: 'expected at least 16 characters' }).optional(),
  API_TOKEN_FILE: z.string().min(1).optional(),
  LOG_LEVEL: logLevel.default('info'),
  REQUEST_TIMEOUT: int(0, 3_600_000).default(30_000),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, { message: 'expected a size such as 16kb' })
    .default('16kb'),
  WORKERS: int(0, 64).default(1),
  WORKER_CONCURRENCY: int(1, 64).default(2),
  LOCK_TTL: int(1_000, 600_000).default(30_000),
  LOCK_RETRY_DELAY: int(50, 600_000).default(1_000),
  RESTORE_BUSY_TIMEOUT: int(100, 3_600_000).default(60_000),
  JOB_ATTEMPTS: int(1, 100).default(3),
  JOB_BACKOFF: int(0, 3_600_000).default(2_000),
  SHUTDOWN_TIMEOUT: int(0, 3_600_000).default(30_000),
  LOG_FILE: z.string().min(1).optional(),
  BOARD_READ_ONLY: bool.default(false),
  METRICS_TOKEN: z.string().min(16, { message: 'expected at least 16 characters' }).optional(),
  HEARTBEAT_INTERVAL: int(100, 600_000).default(5_000),
  VERIFY_AFTER_BACKUP: bool.default(false),
  VERIFY_SCHEDULE: verifyScheduleSchema.default('off'),
  /** Restore drills of the WAL archive: `off`, milliseconds, or a cron pattern (like VERIFY_SCHEDULE). */
  RESTORE_DRILL_SCHEDULE: verifyScheduleSchema.default('off'),
  ALERT_WEBHOOK_URL: httpUrl.optional(),
  ALERT_ATTEMPTS: int(1, 50).default(5),
  ALERT_TIMEOUT: int(100, 600_000).default(5_000),
  JOB_LOCK_DURATION: int(1_000, 3_600_000).default(30_000),
  STALLED_INTERVAL: int(500, 3_600_000).default(30_000),
  REAPER_INTERVAL: int(500, 86_400_000).default(60_000),
  CATALOG_BUSY_TIMEOUT: int(100, 3_600_000).default(10_000),
  /** Continuous archiving of the database's WAL (RPO about one interval). */
  WAL_ARCHIVE_ENABLED: bool.default(false),
  WAL_ARCHIVE_INTERVAL: int(MIN_WAL_ARCHIVE_INTERVAL, MAX_WAL_ARCHIVE_INTERVAL).default(1_000),
  /** How often the WAL archive's new segments are sent to the mirror, in one object (BACKUP_MIRROR_URL). */
  WAL_MIRROR_INTERVAL: int(MIN_WAL_ARCHIVE_INTERVAL, MAX_WAL_ARCHIVE_INTERVAL).default(1_000),
  WAL_RETENTION: int(MIN_WAL_RETENTION, MAX_WAL_RETENTION).default(7 * 86_400_000),
  /** Seconds a restore from the mirror alone may fall behind now before `/health` is degraded and `mirror.lagging` is sent. */
  OFFSITE_LAG_ALERT: int(1, 30 * 86_400).default(60),
  /** Days of history (failed backup rows, verifications, restores) kept; see Catalog.pruneHistory. */
  HISTORY_RETENTION_DAYS: int(1, 36_500).default(90),
});

export type Env = z.input<typeof envSchema>;

type Parsed = z.output<typeof envSchema>;

function mirrorDirOf(parsed: Parsed): string | undefined {
  if (parsed.BACKUP_MIRROR_DIR) return path.resolve(parsed.BACKUP_MIRROR_DIR);
  if (parsed.BACKUP_MIRROR_URL?.startsWith('file:')) return fileURLToPath(parsed.BACKUP_MIRROR_URL);
  return undefined;
}

function mirrorUrlOf(parsed: Parsed): string | undefined {
  if (parsed.BACKUP_MIRROR_URL?.startsWith('s3:')) return parsed.BACKUP_MIRROR_URL.replace(/\/+$/, '');
  const dir = mirrorDirOf(parsed);
  return dir ? pathToFileURL(dir).href : undefined;
}

function build(parsed: Parsed) {
  const backupDir = path.resolve(parsed.BACKUP_DIR);
  return {
    backupDir,
    maxBackups: parsed.MAX_BACKUPS,
    maxSafetyBackups: parsed.MAX_SAFETY_BACKUPS,
    autoBackupEnabled: parsed.AUTO_BACKUP_ENABLED,
    autoBackupInterval: parsed.AUTO_BACKUP_INTERVAL,
    compression: parsed.BACKUP_COMPRESSION,
    databasePath: path.resolve(parsed.DATABASE_PATH),
    /** The key new backups are encrypted with (base64); unset with no key file = no encryption. */
    encryptionKey: parsed.BACKUP_ENCRYPTION_KEY,
    encryptionKeyFile: parsed.BACKUP_ENCRYPTION_KEY_FILE ? path.resolve(parsed.BACKUP_ENCRYPTION_KEY_FILE) : undefined,
    /** Older keys, only for reading backups written before a key rotation. */
    decryptionKeys: parsed.BACKUP_DECRYPTION_KEYS ?? [],
    /** The mirror's URL (`file:///…` for BACKUP_MIRROR_DIR), or undefined without a mirror. */
    mirrorUrl: mirrorUrlOf(parsed),
    /** The mirror's directory when it is one (BACKUP_MIRROR_DIR or a file:// URL). */
    mirrorDir: mirrorDirOf(parsed),
    mirrorTimeout: parsed.BACKUP_MIRROR_TIMEOUT,
    s3: {
      region: parsed.AWS_REGION,
      endpoint: parsed.AWS_ENDPOINT_URL_S3 ?? parsed.AWS_ENDPOINT_URL,
      forcePathStyle: parsed.S3_FORCE_PATH_STYLE,
    },
    catalogPath: path.resolve(parsed.CATALOG_PATH ?? path.join(backupDir, 'backup-catalog.db')),
    redisUrl: parsed.REDIS_URL,
    queuePrefix: parsed.QUEUE_PREFIX,
    port: parsed.PORT,
    host: parsed.HOST,
    apiToken: parsed.API_TOKEN,
    apiTokenFile: path.resolve(parsed.API_TOKEN_FILE ?? path.join(backupDir, '.api-token')),
    logLevel: parsed.LOG_LEVEL,
    requestTimeout: parsed.REQUEST_TIMEOUT,
    bodyLimit: parsed.BODY_LIMIT,
    workers: parsed.WORKERS,
    workerConcurrency: parsed.WORKER_CONCURRENCY,
    lockTtl: parsed.LOCK_TTL,
    lockRetryDelay: parsed.LOCK_RETRY_DELAY,
    restoreBusyTimeout: parsed.RESTORE_BUSY_TIMEOUT,
    jobAttempts: parsed.JOB_ATTEMPTS,
    jobBackoff: parsed.JOB_BACKOFF,
    shutdownTimeout: parsed.SHUTDOWN_TIMEOUT,
    logFile: parsed.LOG_FILE === undefined ? undefined : path.resolve(parsed.LOG_FILE),
    boardReadOnly: parsed.BOARD_READ_ONLY,
    metricsToken: parsed.METRICS_TOKEN,
    heartbeatInterval: parsed.HEARTBEAT_INTERVAL,
    verifyAfterBackup: parsed.VERIFY_AFTER_BACKUP,
    verifySchedule: parsed.VERIFY_SCHEDULE,
    restoreDrillSchedule: parsed.RESTORE_DRILL_SCHEDULE,
    alertWebhookUrl: parsed.ALERT_WEBHOOK_URL,
    alertAttempts: parsed.ALERT_ATTEMPTS,
    alertTimeout: parsed.ALERT_TIMEOUT,
    jobLockDuration: parsed.JOB_LOCK_DURATION,
    stalledInterval: parsed.STALLED_INTERVAL,
    reaperInterval: parsed.REAPER_INTERVAL,
    catalogBusyTimeout: parsed.CATALOG_BUSY_TIMEOUT,
    historyRetentionDays: parsed.HISTORY_RETENTION_DAYS,
    walArchiveEnabled: parsed.WAL_ARCHIVE_ENABLED,
    walArchiveInterval: parsed.WAL_ARCHIVE_INTERVAL,
    walMirrorInterval: parsed.WAL_MIRROR_INTERVAL,
    walRetention: parsed.WAL_RETENTION,
    offsiteLagAlert: parsed.OFFSITE_LAG_ALERT,
  };
}

export type Config = Readonly<ReturnType<typeof build>>;

/** Variables whose values never appear in an error message. */
const SECRET = new Set(['API_TOKEN', 'METRICS_TOKEN', 'ALERT_WEBHOOK_URL', 'BACKUP_ENCRYPTION_KEY', 'BACKUP_DECRYPTION_KEYS']);

/**
 * Reads the configuration from an environment. Empty strings count as unset, so `FOO=` in an
 * .env file falls back to the default instead of failing.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') cleaned[key] = value.trim();
  }
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0]);
    const shown = SECRET.has(name) ? '(hidden)' : JSON.stringify(cleaned[name]);
    throw new ConfigError(`Invalid ${name}=${shown}: ${issue.message}`);
  }
  if (result.data.BACKUP_MIRROR_DIR && result.data.BACKUP_MIRROR_URL) {
    throw new ConfigError('Invalid BACKUP_MIRROR_URL: set either BACKUP_MIRROR_DIR or BACKUP_MIRROR_URL, not both');
  }
  const config = build(result.data);
  if (config.encryptionKey && config.encryptionKeyFile) {
    throw new ConfigError('Invalid BACKUP_ENCRYPTION_KEY_FILE: set either BACKUP_ENCRYPTION_KEY or BACKUP_ENCRYPTION_KEY_FILE, not both');
  }
  if (
    config.mirrorDir &&
    (config.mirrorDir === config.backupDir || isInside(config.backupDir, config.mirrorDir) || isInside(config.mirrorDir, config.backupDir))
  ) {
    throw new ConfigError(
      `Invalid ${cleaned.BACKUP_MIRROR_DIR ? 'BACKUP_MIRROR_DIR' : 'BACKUP_MIRROR_URL'}=${JSON.stringify(cleaned.BACKUP_MIRROR_DIR ?? cleaned.BACKUP_MIRROR_URL)}: expected a directory apart from BACKUP_DIR (another disk or mount)`,
    );
  }
  return Object.freeze(config);
}

/** The configuration of this process. The only place that reads process.env. */
export function loadConfig(overrides: Record<string, string | undefined> = {}): Config {
  return parseConfig({ ...process.env, ...overrides });
}
