import { hostname } from 'node:os';
import path from 'node:path';
import { storesOf } from '../shared/storage/registry.js';
import { nameOf } from '../shared/storage/storage.js';
import { Queue } from 'bullmq';
import type { BackupRow } from '../shared/catalog/catalog.js';
import { tryAcquireDatabaseLock } from '../shared/locking/acquire.js';
import { removeAbandonedBackupTemps, removeStaleWriteTemps } from '../shared/runtime/files.js';
import { cliRunOwner, isCliRunId, processAlive } from '../shared/runtime/process-owner.js';
import { QUEUE } from '../shared/jobs/queues.js';
import { restoreJobOfSafety } from '../shared/jobs/job-ids.js';
import type { WorkerContext } from './context.js';

/** Job states after which a job will never run again by itself. `unknown`: no such job (removed, or Redis lost it). */
const GONE = new Set(['completed', 'failed', 'unknown']);

/** History pruning deletes rows by age in days; once an hour is plenty. */
const PRUNE_INTERVAL = 3_600_000;

export interface ReapResult {
  backups: number[];
  restores: number[];
}

/**
 * A CLI row from another host cannot be checked (its pid means nothing here): it is settled only
 * once this old. Longer than any backup or restore takes; while one runs, its CLI holds the local
 * lock, so the reaper never looks at it anyway.
 */
export const FOREIGN_CLI_ROW_MAX_AGE_MS = 24 * 3_600_000;

/**
 * Settles catalog rows left `in_progress` by a process that died (kill -9, OOM, a lost container).
 * A queue job's row is settled once its job is gone for good: a job that stalled and will run again
 * takes over its own row, so only rows whose job is finished, failed or missing are marked `failed`.
 * A CLI run's row (`cli:<host>:<pid>:…`, see process-owner.ts) is settled once that process is not
 * running on this host (or, from another host, once very old): no queue knows it. It works under
 * the whole database lock, Redis and the local file lock that a CLI run with Redis down holds
 * alone, so nothing it removes can belong to a backup or restore in progress; and it leaves the
 * temp files of any live process alone all the same.
 */
export class Reaper {
  private readonly backupQueue: Queue;
  private readonly restoreQueue: Queue;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private lastPrune = 0;
  private readonly log: WorkerContext['log'];

  constructor(private readonly ctx: WorkerContext) {
    this.log = ctx.log.child({ component: 'reaper' });
    const opts = { connection: ctx.redis, prefix: ctx.config.queuePrefix };
    this.backupQueue = new Queue(QUEUE.backup, opts);
    this.restoreQueue = new Queue(QUEUE.restore, opts);
    // An unheard 'error' event would end the process; the connection watcher reports outages.
    for (const queue of [this.backupQueue, this.restoreQueue]) {
      queue.on('error', (err) => this.log.debug({ err }, 'reaper queue connection error'));
    }
  }

  /** Runs a pass now and then every REAPER_INTERVAL. */
  start(): void {
    const tick = () => {
      this.pass = this.runOnce().catch((err: unknown) => this.log.warn({ err }, 'reaper pass failed; trying again later'));
      void this.pass.then(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.ctx.config.reaperInterval).unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.pass;
    await Promise.allSettled([this.backupQueue.close(), this.restoreQueue.close()]);
  }

  /** One pass. Returns the ids of the backup and restore rows it marked `failed`. */
  async runOnce(): Promise<ReapResult> {
    const result: ReapResult = { backups: [], restores: [] };
    const { catalog, config } = this.ctx;
    const { log } = this;
    await this.housekeeping();
    // Cheap check first, so an idle catalog never costs a lock round-trip.
    if (!catalog.inProgressBackups().length && !catalog.inProgressRestores().length) return result;
    const release = await this.lockAll();
    if (!release) return result; // a backup or restore is running; the next pass looks again
    try {
      for (const row of catalog.inProgressBackups()) {
        const reason = await this.abandonment(row.job_id, row.started_at, (jobId) => this.backupOwner(jobId));
        if (!reason) continue;
        if (!catalog.failBackup(row.id, `${reason}; nothing was kept`)) continue;
        await this.removeLeftovers(row);
        result.backups.push(row.id);
      }
      for (const row of catalog.inProgressRestores()) {
        const reason = await this.abandonment(row.job_id, row.started_at, (jobId) => ({ queue: this.restoreQueue, jobId }));
        if (!reason) continue;
        const outcome = row.restored_at
          ? 'the backup had been copied into the live database before it was lost'
          : 'it was lost before the copy committed; the live database was not changed by it';
        if (catalog.failRestoreInProgress(row.id, `${reason}; ${outcome}`)) result.restores.push(row.id);
      }
      if (result.backups.length || result.restores.length) await removeAbandonedBackupTemps(config.backupDir);
    } finally {
      await release();
    }
    if (result.backups.length || result.restores.length) {
      log.warn(
        { backups: result.backups, restores: result.restores, backupDir: config.backupDir },
        'reaper marked abandoned rows as failed',
      );
    }
    return result;
  }

  /**
   * The whole database lock, taken as every backup and restore takes it (Redis, then the local
   * file lock a CLI run with Redis down holds alone, then the fence), so a holder paused past its
   * lock cannot act after this pass. Null when another holder has it: the next pass looks again.
   */
  private async lockAll(): Promise<(() => Promise<void>) | null> {
    const { lock, workerId, config, catalog } = this.ctx;
    const held = await tryAcquireDatabaseLock({
      config,
      catalog,
      redisLock: lock,
      holder: `${workerId}:reaper`,
      note: (message) => this.log.debug(message),
    });
    return held.guard ? () => held.release() : null;
  }

  /** What needs no database lock: temps of an interrupted storage write, and (hourly) old catalog history. */
  private async housekeeping(): Promise<void> {
    const { catalog, config } = this.ctx;
    const { log } = this;
    // A busy catalog or an unreadable directory here must not keep the pass from settling rows.
    try {
      const removed = [
        ...(await removeStaleWriteTemps(config.backupDir)),
        ...(config.mirrorDir ? await removeStaleWriteTemps(config.mirrorDir) : []),
      ];
      if (removed.length) log.warn({ files: removed }, 'removed temp files of an interrupted write');
      if (Date.now() - this.lastPrune < PRUNE_INTERVAL) return;
      this.lastPrune = Date.now();
      const pruned = catalog.pruneHistory(new Date(Date.now() - config.historyRetentionDays * 86_400_000));
      if (pruned.backups || pruned.verifications || pruned.restores) log.info(pruned, 'pruned old catalog history');
    } catch (err) {
      log.warn({ err }, 'housekeeping failed; trying again on the next pass');
    }
  }

  /** Why a row is abandoned, or null while its owner may still finish it (or no owner is known). */
  private async abandonment(
    jobId: string | null,
    startedAt: string,
    queueJob: (jobId: string) => { queue: Queue; jobId: string },
  ): Promise<string | null> {
    if (!jobId) return null; // made outside the queue and the CLI: nobody to ask
    if (isCliRunId(jobId)) return this.cliAbandonment(jobId, startedAt);
    const owner = queueJob(jobId);
    if (!GONE.has(await owner.queue.getJobState(owner.jobId))) return null;
    return `abandoned: its job ${jobId} is gone (the worker running it died or the job was removed)`;
  }

  private cliAbandonment(jobId: string, startedAt: string): string | null {
    const owner = cliRunOwner(jobId);
    if (owner && owner.host === hostname()) {
      return processAlive(owner.pid) ? null : `abandoned: the CLI run ${jobId} is gone (process ${owner.pid} is not running)`;
    }
    const age = Date.now() - Date.parse(startedAt);
    if (!(age > FOREIGN_CLI_ROW_MAX_AGE_MS)) return null;
    return `abandoned: the CLI run ${jobId} (on ${owner?.host ?? 'an unknown host'}) started ${Math.round(age / 3_600_000)} h ago and never finished`;
  }

  /** The queue and job a backup row belongs to: a restore's safety backup is named after the restore's job (safetyJobId). */
  private backupOwner(jobId: string): { queue: Queue; jobId: string } {
    const restoreJob = restoreJobOfSafety(jobId);
    return restoreJob ? { queue: this.restoreQueue, jobId: restoreJob } : { queue: this.backupQueue, jobId };
  }

  /**
   * The final file of the abandoned backup, if its worker died between publishing it and recording
   * it: a whole, fsynced file, but one the catalog does not vouch for. Temp files go separately.
   */
  private async removeLeftovers(row: BackupRow): Promise<void> {
    const claimed = this.ctx.catalog.fileListedElsewhere(row.file_path, row.id);
    if (!claimed && path.dirname(row.file_path) === this.ctx.config.backupDir) {
      const { primary } = storesOf(this.ctx.config);
      await primary.remove(nameOf(row)).catch(() => undefined);
    }
  }
}
