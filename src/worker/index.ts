import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Queue, Worker } from 'bullmq';
import type { Config } from '../shared/runtime/config.js';
import { keyringOf } from '../shared/codec/encryption.js';
import { ensurePrivateDir } from '../shared/runtime/files.js';
import { DatabaseLock } from '../shared/locking/lock.js';
import type { Logger } from '../shared/runtime/logger.js';
import { openCatalog } from '../shared/operations/open-catalog.js';
import { CancelGates, answerCancel, onCancelRequest } from '../shared/jobs/cancel.js';
import { QUEUE, QUEUE_NAMES, type QueueName } from '../shared/jobs/registry.js';
import type { WalJobData } from '../shared/jobs/job-data.js';
import { currentSettings } from '../shared/catalog/settings.js';
import { archiverLockDuration, ensureArchiverJob } from '../shared/wal/archiver-job.js';
import { waitForRedis, workerRedis } from '../shared/runtime/redis.js';
import { runService } from '../shared/runtime/service-main.js';
import { backupProcessor } from './backup-processor.js';
import type { WorkerContext } from './context.js';
import { createWorkerOps } from './ops.js';
import type { Processor } from './processor.js';
import { restoreProcessor } from './restore-processor.js';
import { Reaper } from './reaper.js';
import { verifyProcessor } from './verify-processor.js';
import { walProcessor } from './wal-processor.js';

/**
 * Each queue's processor; the registry (`shared/jobs/registry.ts`) holds the rest of its
 * definition. Adding a queue is an entry there and one here, which the type makes mandatory.
 */
const PROCESSORS: { [Q in QueueName]: (ctx: WorkerContext) => Processor<Q> } = {
  backup: backupProcessor,
  verify: verifyProcessor,
  restore: restoreProcessor,
  wal: walProcessor,
};

export interface RunningWorker {
  ctx: WorkerContext;
  workers: Worker[];
  reaper: Reaper;
  /**
   * Cancels a job this process runs: it stops at its next safe point and fails for good with
   * `cancelled`. False when the job is not running here, or is past its point of no return (a
   * restore copying into the live database), which refuses it. Other processes reach it through
   * `requestCancel` (`shared/jobs/cancel.ts`).
   */
  cancel(queue: string, jobId: string, reason?: string): boolean;
  close(): Promise<void>;
}

/** Starts a worker for every queue of the registry in this process. */
export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  await ensurePrivateDir(config.backupDir);
  keyringOf(config); // an unreadable key file stops the start, not the first backup
  const redis = workerRedis(config.redisUrl, log);
  await waitForRedis(redis, config.redisUrl, 10_000);
  // A lost catalog is rebuilt from the backups' manifests before anything reads it.
  const { catalog } = await openCatalog(config, log);
  const workerId = `${hostname()}:${process.pid}`;
  const ctx: WorkerContext = {
    config,
    catalog,
    redis,
    lock: new DatabaseLock(redis, config.queuePrefix, catalog, config.lockTtl),
    log,
    workerId,
    stopping: false,
    gates: new CancelGates(),
  };
  // A worker that dies stops renewing its job locks: after lockDuration another worker's stalled
  // check (every stalledInterval) puts the job back in the queue, once; a second stall fails it.
  const opts = {
    connection: redis,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    lockDuration: config.jobLockDuration,
    stalledInterval: config.stalledInterval,
    maxStalledCount: 1,
  };
  const ops = createWorkerOps(ctx);
  ctx.alerts = ops.alerts;
  // The archiver's job runs for hours: a dead worker's copy is taken over one lock duration (plus
  // one check) later, however often it already stalled.
  const walOpts = {
    ...opts,
    concurrency: 1,
    lockDuration: archiverLockDuration(config),
    stalledInterval: Math.min(config.stalledInterval, Math.max(50, Math.floor(config.walArchiveInterval / 2))),
    maxStalledCount: Number.MAX_SAFE_INTEGER,
  };
  const processors: Processor<QueueName>[] = [];
  /** A queue's `Worker`, running its processor inside the ops' wrapper. */
  const workerFor = <Q extends QueueName>(name: Q): Worker => {
    const processor = PROCESSORS[name](ctx);
    processors.push(processor);
    return new Worker(name, ops.wrap(name, processor), name === QUEUE.wal ? walOpts : opts);
  };
  const workers = QUEUE_NAMES.map(workerFor);
  const cancel = (queue: string, jobId: string, reason?: string) => ctx.gates?.cancel(queue, jobId, reason) === 'cancelled';
  for (const w of workers) {
    ops.watch(w);
    w.on('failed', (job, err) => {
      log.warn({ queue: w.name, jobId: job?.id, attempt: job?.attemptsMade, err }, 'job attempt failed');
    });
    w.on('error', (err) => log.error({ queue: w.name, err }, 'worker error'));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  await ops.start(workers.map((w) => w.name));
  const subscriber = redis.duplicate();
  subscriber.on('error', (err) => log.debug({ err }, 'cancel subscriber connection error'));
  const stopListening = await onCancelRequest(subscriber, config.queuePrefix, (request) => {
    const { queue, jobId, reason } = request;
    const answer = ctx.gates?.cancel(queue, jobId, reason);
    if (!answer) return;
    if (answer === 'cancelled') log.warn({ queue, jobId, reason }, 'job cancelled on request');
    else log.warn({ queue, jobId, reason }, 'cancel refused: the job is past its point of no return (copying into the live database)');
    answerCancel(redis, config.queuePrefix, request, answer).catch((err: unknown) =>
      log.debug({ err }, 'could not answer a cancel request'),
    );
  });
  const reaper = new Reaper(ctx);
  reaper.start();
  // The archiver's job is brought back whenever it is missing (first start, Redis restarted empty).
  const walQueue = new Queue<WalJobData>(QUEUE.wal, { connection: redis, prefix: config.queuePrefix });
  const ensureArchiver = async () => {
    if (!currentSettings(config, catalog).walArchiveEnabled) return;
    await ensureArchiverJob(walQueue).catch((err: unknown) => log.debug({ err }, 'could not check the WAL archiver job'));
  };
  await ensureArchiver();
  const archiverWatch = setInterval(() => void ensureArchiver(), Math.max(1_000, Math.min(config.reaperInterval, 10_000)));
  archiverWatch.unref();
  log.info({ workerId, concurrency: config.workerConcurrency, queues: workers.map((w) => w.name) }, 'worker ready');

  let closing: Promise<void> | undefined;
  return {
    ctx,
    workers,
    reaper,
    cancel,
    close() {
      closing ??= (async () => {
        ctx.stopping = true;
        clearInterval(archiverWatch);
        await stopListening();
        subscriber.disconnect();
        await Promise.allSettled([...workers.map((w) => w.close()), reaper.stop()]);
        await walQueue.close().catch(() => undefined);
        await Promise.allSettled(processors.map((p) => p.close?.()));
        await ops.stop();
        catalog.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void runService('worker', startWorker, { stopping: 'finishing running jobs' });
}
