import path from 'node:path';
import { Queue } from 'bullmq';
import type { BackupRow, RestoreRow } from '../shared/catalog.js';
import { messageOf } from '../shared/errors.js';
import { removeAbandonedBackupTemps, removeQuietly } from '../shared/files.js';
import { QUEUE } from '../shared/queues.js';
import type { WorkerContext } from './context.js';

/** Job states after which a job will never run again by itself. `unknown`: no such job (removed, or Redis lost it). */
const GONE = new Set(['completed', 'failed', 'unknown']);

/** The safety backup of a restore is named after the restore's job (see restore.ts). */
const SAFETY_SUFFIX = ':safety';

export interface ReapResult {
  backups: number[];
  restores: number[];
}

/**
 * Settles catalog rows left `in_progress` by a worker that died (kill -9, OOM, a lost container)
 * once their job is gone for good: a job that stalled and will run again takes over its own row,
 * so only rows whose job is finished, failed or missing are marked `failed`, and the temp files
 * of backups and restores removed. It works under the database lock: while it holds the lock no
 * backup or restore runs anywhere, so nothing it removes can belong to a live job.
 */
export class Reaper {
  private readonly backupQueue: Queue;
  private readonly restoreQueue: Queue;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly ctx: WorkerContext) {
    const opts = { connection: ctx.redis, prefix: ctx.config.queuePrefix };
    this.backupQueue = new Queue(QUEUE.backup, opts);
    this.restoreQueue = new Queue(QUEUE.restore, opts);
    // An unheard 'error' event would end the process; the connection watcher reports outages.
    for (const queue of [this.backupQueue, this.restoreQueue]) {
      queue.on('error', (err) => ctx.log.debug({ err: err.message }, 'reaper queue connection error'));
    }
  }

  /** Runs a pass now and then every REAPER_INTERVAL. */
  start(): void {
    const tick = () => {
      this.pass = this.runOnce().catch((err: unknown) =>
        this.ctx.log.warn({ err: messageOf(err) }, 'reaper pass failed; trying again later'),
      );
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
    const { catalog, lock, workerId, log, config } = this.ctx;
    // Cheap check first, so an idle catalog never costs a lock round-trip.
    if (!catalog.inProgressBackups().length && !this.inProgressRestores().length) return result;
    const held = await lock.tryAcquire(`${workerId}:reaper`);
    if (!held) return result; // a backup or restore is running; the next pass looks again
    try {
      for (const row of catalog.inProgressBackups()) {
        const owner = this.ownerOf(row);
        if (!owner || !(await this.isGone(owner.queue, owner.jobId))) continue;
        const reason = `abandoned: its job ${row.job_id} is gone (the worker running it died or the job was removed); nothing was kept`;
        const changed = catalog.db
          .prepare(
            `UPDATE backup_log SET status = 'failed', completed_at = ?, error_message = ?, file_size_bytes = NULL
                     WHERE id = ? AND status = 'in_progress'`,
          )
          .run(new Date().toISOString(), reason, row.id).changes;
        if (!changed) continue;
        await this.removeLeftovers(row);
        result.backups.push(row.id);
      }
      for (const row of this.inProgressRestores()) {
        if (!row.job_id || !(await this.isGone(this.restoreQueue, row.job_id))) continue;
        const reason = row.restored_at
          ? `abandoned: its job ${row.job_id} is gone; the backup had been copied into the live database before the job was lost`
          : `abandoned: its job ${row.job_id} is gone before the copy committed; the live database was not changed by it`;
        const changed = catalog.db
          .prepare(`UPDATE restore_log SET status = 'failed', completed_at = ?, error_message = ? WHERE id = ? AND status = 'in_progress'`)
          .run(new Date().toISOString(), reason, row.id).changes;
        if (changed) result.restores.push(row.id);
      }
      if (result.backups.length || result.restores.length) await removeAbandonedBackupTemps(config.backupDir);
    } finally {
      await held.release();
    }
    if (result.backups.length || result.restores.length) {
      log.warn(
        { backups: result.backups, restores: result.restores, backupDir: config.backupDir },
        'reaper marked abandoned rows as failed',
      );
    }
    return result;
  }

  private inProgressRestores(): RestoreRow[] {
    return this.ctx.catalog.db.prepare(`SELECT * FROM restore_log WHERE status = 'in_progress' ORDER BY id`).all() as RestoreRow[];
  }

  /** The queue and job a backup row belongs to; rows made outside the queue (no job id) are left alone. */
  private ownerOf(row: BackupRow): { queue: Queue; jobId: string } | null {
    if (!row.job_id) return null;
    if (row.job_id.endsWith(SAFETY_SUFFIX)) return { queue: this.restoreQueue, jobId: row.job_id.slice(0, -SAFETY_SUFFIX.length) };
    return { queue: this.backupQueue, jobId: row.job_id };
  }

  private async isGone(queue: Queue, jobId: string): Promise<boolean> {
    return GONE.has(await queue.getJobState(jobId));
  }

  /**
   * The final file of the abandoned backup, if its worker died between publishing it and recording
   * it: a whole, fsynced file, but one the catalog does not vouch for. Temp files go separately.
   */
  private async removeLeftovers(row: BackupRow): Promise<void> {
    const claimed = this.ctx.catalog.db
      .prepare(`SELECT count(*) AS n FROM backup_log WHERE file_path = ? AND id != ?`)
      .get(row.file_path, row.id) as { n: number };
    if (!claimed.n && path.dirname(row.file_path) === this.ctx.config.backupDir) await removeQuietly(row.file_path);
  }
}
