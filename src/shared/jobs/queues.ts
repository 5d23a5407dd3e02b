import { Queue, QueueEvents, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { BACKUP_TYPES } from '../domain/backup-types.js';
import type { Config } from '../runtime/config.js';
import type { Logger } from '../observability/logger.js';

export const QUEUE = { backup: 'backup', verify: 'verify', restore: 'restore' } as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];
export const QUEUE_NAMES = Object.values(QUEUE);

/** The id of the one job scheduler that produces `scheduled` backups. */
export const AUTO_BACKUP_SCHEDULER = 'auto-backup';

export const backupJobSchema = z.object({ type: z.enum(BACKUP_TYPES) }).strict();
export type BackupJobData = z.infer<typeof backupJobSchema>;

export const verifyJobSchema = z
  .object({ backupId: z.number().int().positive(), mode: z.enum(['full', 'quick']).default('full') })
  .strict();
export type VerifyJobData = z.infer<typeof verifyJobSchema>;

/**
 * The deduplication id of a verify job: while one for a backup and mode is pending (waiting,
 * delayed or running), adding another returns it instead. The API, the verification sweep and
 * the follow-up after a backup all use it, so they share one pending job per backup.
 */
export const verifyDedupId = (backupId: number, mode: VerifyJobData['mode']) => `verify-${backupId}-${mode}`;

/** A restore target that is not one backup: the newest backup that passes full verification. */
export const LATEST_VALID = 'latest-valid';

/** One backup by id, or the newest valid one (chosen by the worker when the job runs). */
export const restoreJobSchema = z.union([
  z.object({ backupId: z.number().int().positive() }).strict(),
  z.object({ to: z.literal(LATEST_VALID) }).strict(),
]);
export type RestoreJobData = z.infer<typeof restoreJobSchema>;

/** One pending restore per target; a second request for it joins the first. */
export const restoreDedupId = (target: number | typeof LATEST_VALID) => `restore-${target}`;

export const JOB_SCHEMAS = {
  [QUEUE.backup]: backupJobSchema,
  [QUEUE.verify]: verifyJobSchema,
  [QUEUE.restore]: restoreJobSchema,
} as const;

/** Retries with exponential backoff; finished jobs kept for inspection, but bounded. */
export function defaultJobOptions(config: Config): DefaultJobOptions {
  return {
    attempts: config.jobAttempts,
    backoff: { type: 'exponential', delay: config.jobBackoff },
    removeOnComplete: { count: 1_000, age: 7 * 24 * 3600 },
    removeOnFail: { count: 5_000, age: 30 * 24 * 3600 },
  };
}

export interface Queues {
  backup: Queue<BackupJobData>;
  verify: Queue<VerifyJobData>;
  restore: Queue<RestoreJobData>;
  events: Record<QueueName, QueueEvents>;
  all(): Queue[];
  close(): Promise<void>;
}

/**
 * The three queues and their event streams. `connection` is shared by the queues; each
 * QueueEvents needs a blocking connection of its own, duplicated from `eventsConnection`.
 */
export function createQueues(config: Config, connection: Redis, eventsConnection: Redis, log?: Logger): Queues {
  const opts = { connection, prefix: config.queuePrefix, defaultJobOptions: defaultJobOptions(config) };
  const backup = new Queue<BackupJobData>(QUEUE.backup, opts);
  const verify = new Queue<VerifyJobData>(QUEUE.verify, opts);
  const restore = new Queue<RestoreJobData>(QUEUE.restore, opts);
  const events = Object.fromEntries(
    QUEUE_NAMES.map((name) => [name, new QueueEvents(name, { connection: eventsConnection.duplicate(), prefix: config.queuePrefix })]),
  ) as Record<QueueName, QueueEvents>;
  const all = () => [backup, verify, restore] as Queue[];
  // An 'error' event nobody listens to would crash the process; connection trouble is already
  // reported once by the connection watcher, and requests fail with a clear 503 meanwhile.
  const onError = (err: Error) => log?.debug({ err }, 'queue connection error');
  for (const queue of all()) queue.on('error', onError);
  for (const listener of Object.values(events)) listener.on('error', onError);
  return {
    backup,
    verify,
    restore,
    events,
    all,
    async close() {
      await Promise.allSettled([...Object.values(events).map((e) => e.close()), ...all().map((q) => q.close())]);
    },
  };
}
