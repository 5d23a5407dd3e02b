import { Queue, QueueEvents, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';
import { QUEUE_NAMES, type QueueName, type StoredJobOf } from './registry.js';

export * from './job-data.js';
export {
  JOB_SCHEMAS,
  QUEUE,
  QUEUE_NAMES,
  QUEUE_REGISTRY,
  isQueueName,
  type JobDataOf,
  type QueueName,
  type StoredJobOf,
} from './registry.js';

/** The id of the one job scheduler that produces `scheduled` backups. */
export const AUTO_BACKUP_SCHEDULER = 'auto-backup';

/** Retries with exponential backoff; finished jobs kept for inspection, but bounded. */
export function defaultJobOptions(config: Config): DefaultJobOptions {
  return {
    attempts: config.jobAttempts,
    backoff: { type: 'exponential', delay: config.jobBackoff },
    removeOnComplete: { count: 1_000, age: 7 * 24 * 3600 },
    removeOnFail: { count: 5_000, age: 30 * 24 * 3600 },
  };
}

/** One queue per name of the registry, each typed by what it holds. */
type QueueSet = { [Q in QueueName]: Queue<StoredJobOf<Q>> };

export type Queues = QueueSet & {
  events: Record<QueueName, QueueEvents>;
  all(): Queue[];
  close(): Promise<void>;
};

/**
 * Every queue of the registry and its event stream. `connection` is shared by the queues; each
 * QueueEvents needs a blocking connection of its own, duplicated from `eventsConnection`.
 */
export function createQueues(config: Config, connection: Redis, eventsConnection: Redis, log?: Logger): Queues {
  const opts = { connection, prefix: config.queuePrefix, defaultJobOptions: defaultJobOptions(config) };
  // Each queue holds what its registry entry's schema reads (`QueueSet`).
  const queues = Object.fromEntries(QUEUE_NAMES.map((name) => [name, new Queue(name, opts)])) as QueueSet;
  const events = Object.fromEntries(
    QUEUE_NAMES.map((name) => [name, new QueueEvents(name, { connection: eventsConnection.duplicate(), prefix: config.queuePrefix })]),
  ) as Record<QueueName, QueueEvents>;
  const all = (): Queue[] => QUEUE_NAMES.map((name) => queues[name]);
  // An 'error' event nobody listens to would crash the process; connection trouble is already
  // reported once by the connection watcher, and requests fail with a clear 503 meanwhile.
  const onError = (err: Error) => log?.debug({ err }, 'queue connection error');
  for (const queue of all()) queue.on('error', onError);
  for (const listener of Object.values(events)) listener.on('error', onError);
  return {
    ...queues,
    events,
    all,
    async close() {
      await Promise.allSettled([...Object.values(events).map((e) => e.close()), ...all().map((q) => q.close())]);
    },
  };
}
