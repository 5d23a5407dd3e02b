import { Queue, type Job } from 'bullmq';
import { defaultJobOptions } from '../shared/jobs/queues.js';
import type { QueueName, StoredJobOf } from '../shared/jobs/registry.js';
import type { WorkerContext } from './context.js';

/** Three parameters: BullMQ only creates a job's AbortController for a processor declared with three. */
export type JobProcessor<J extends Job, R> = (job: J, token: string | undefined, signal: AbortSignal | undefined) => Promise<R>;

/** A job of a queue, as its worker gets it: the data as stored, for the queue's schema to read. */
export type QueueJob<Q extends QueueName> = Job<StoredJobOf<Q>>;

/**
 * One queue's work in a worker process. The registry (`shared/jobs/registry.ts`) says what the
 * queue is; this says what its jobs do, including what a queue does around them (the follow-ups
 * of a backup, the alerts of a verification). `ops.wrap` adds what every queue gets: a cancel gate
 * per job, timing, and the count on the counter the registry names.
 */
export interface Processor<Q extends QueueName> {
  run: JobProcessor<QueueJob<Q>, unknown>;
  /**
   * Whether a job is bookkeeping rather than work (the verification sweep, which only queues
   * other jobs): it runs bare, neither cancellable, timed nor counted.
   */
  bookkeeping?(job: QueueJob<Q>): boolean;
  /** Closes what the processor opened (a queue it adds jobs to); called when the worker stops. */
  close?(): Promise<void>;
}

export interface FollowUpQueue<Q extends QueueName> {
  get(): Queue<StoredJobOf<Q>>;
  close(): Promise<void>;
}

/**
 * A queue this process adds jobs to itself (a verification after a backup, the sweep's fan-out,
 * a snapshot the archiver asks for), opened on first use so that they show on the board like any
 * other; `close` closes it if it was opened.
 */
export function followUpQueue<Q extends QueueName>(ctx: WorkerContext, name: Q): FollowUpQueue<Q> {
  let queue: Queue<StoredJobOf<Q>> | undefined;
  return {
    get(): Queue<StoredJobOf<Q>> {
      queue ??= new Queue<StoredJobOf<Q>>(name, {
        connection: ctx.redis,
        prefix: ctx.config.queuePrefix,
        defaultJobOptions: defaultJobOptions(ctx.config),
      });
      return queue;
    },
    async close(): Promise<void> {
      await queue?.close();
    },
  };
}

/** A job id of ours made from another (a scheduler's ids contain `:`, which custom ids may not). */
export const derivedId = (...parts: (string | number | undefined)[]) =>
  parts.map((p) => String(p).replace(/[^A-Za-z0-9_-]/g, '-')).join('-');
