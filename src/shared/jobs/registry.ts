import type { z } from 'zod';
import {
  backupDedupId,
  backupJobSchema,
  restoreDedupId,
  restoreJobSchema,
  verifyJobDedupId,
  verifyJobSchema,
  WAL_ARCHIVER_JOB_ID,
  walJobSchema,
} from './job-data.js';

/** Everything the producer, the board and the worker need to know of one queue. */
export interface QueueDefinition<S extends z.ZodType = z.ZodType, E extends string = string> {
  /**
   * Reads a job's stored data (`z.input`: what may be added, and the shapes of jobs stored before a
   * change) into the job the processor works with (`z.output`: a union tagged by `kind` where the
   * queue carries several kinds of job).
   */
  schema: S;
  /** While a job with this id is pending, adding another joins it instead; none: nothing joins. */
  dedupId(data: z.output<S>): string | undefined;
  /** The counter its jobs' outcomes go to: `workstation_backup_<metric>_total`. */
  metric: 'backups' | 'verifications' | 'restores' | 'walArchiver';
  /**
   * The alert a job raises when it fails for good. Kept as its literal, so the worker's alert
   * sender (typed by `ALERT_EVENTS`) refuses an event that does not exist; not imported from
   * there, since the metrics that alerts count import the queue names.
   */
  failedEvent: E;
  /** One line for Bull Board. */
  description: string;
}

const define = <S extends z.ZodType, E extends string>(definition: QueueDefinition<S, E>) => definition;

/**
 * The queues, one entry each: adding a queue is an entry here and a processor in the worker's
 * table (`src/worker/index.ts`), which the type makes mandatory.
 */
export const QUEUE_REGISTRY = {
  backup: define({
    schema: backupJobSchema,
    dedupId: (data) => backupDedupId(data.type),
    metric: 'backups',
    failedEvent: 'backup.failed',
    description: 'Consistent copies of the live database (manual, scheduled, pre-migration)',
  }),
  verify: define({
    schema: verifyJobSchema,
    dedupId: verifyJobDedupId,
    metric: 'verifications',
    failedEvent: 'verify.failed',
    description: 'Checksum and integrity checks of backup files',
  }),
  restore: define({
    schema: restoreJobSchema,
    dedupId: restoreDedupId,
    metric: 'restores',
    failedEvent: 'restore.failed',
    description: 'Restores of a backup into the live database',
  }),
  wal: define({
    schema: walJobSchema,
    dedupId: () => WAL_ARCHIVER_JOB_ID,
    metric: 'walArchiver',
    failedEvent: 'wal.failed',
    description: 'Continuous WAL archiving: one long-running job (position and lag in its progress)',
  }),
} as const;

export type QueueName = keyof typeof QUEUE_REGISTRY;
export const QUEUE_NAMES = Object.keys(QUEUE_REGISTRY) as QueueName[];
export const QUEUE = Object.fromEntries(QUEUE_NAMES.map((name) => [name, name])) as { readonly [Q in QueueName]: Q };
/** What a processor works with: a job's data read by its queue's schema. */
export type JobDataOf<Q extends QueueName> = z.output<(typeof QUEUE_REGISTRY)[Q]['schema']>;
/** What a queue holds: a job's data as added (and as jobs stored before a change still have it). */
export type StoredJobOf<Q extends QueueName> = z.input<(typeof QUEUE_REGISTRY)[Q]['schema']>;

export const JOB_SCHEMAS = Object.fromEntries(QUEUE_NAMES.map((name) => [name, QUEUE_REGISTRY[name].schema])) as {
  readonly [Q in QueueName]: (typeof QUEUE_REGISTRY)[Q]['schema'];
};

/** Whether a name (a worker's, a job's queue) is one of ours. */
export const isQueueName = (name: string): name is QueueName => Object.hasOwn(QUEUE_REGISTRY, name);
