import fs from 'node:fs/promises';
import path from 'node:path';
import type { Job } from 'bullmq';
import { createBackup } from '../shared/backup.js';
import { toBackupBody } from '../shared/presenters.js';
import { backupJobSchema, type BackupJobData } from '../shared/queues.js';
import { applyRetention } from '../shared/retention.js';
import { currentSettings } from '../shared/settings.js';
import { isTempName, removeQuietly } from '../shared/files.js';
import { classify, jobLogger, withDatabaseLock, type WorkerContext } from './context.js';

/** Readers (verify, restore) run without the lock; a temp of theirs this old belongs to a dead process. */
const STALE_READ_TEMP_MS = 6 * 3_600_000;

/**
 * Temp files of backups; only a lock holder may remove them, as no other backup is running. Also
 * decoded copies left by a reader that died: for an encrypted backup they are plaintext.
 */
async function removeAbandonedTemps(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const stale = async (n: string) => {
    const s = await fs.stat(path.join(dir, n)).catch(() => null);
    return Boolean(s && Date.now() - s.mtimeMs > STALE_READ_TEMP_MS);
  };
  const doomed: string[] = [];
  for (const n of names.filter(isTempName)) {
    if (n.includes('-backup-') || (n.startsWith('.tmp-read-') && (await stale(n)))) doomed.push(path.join(dir, n));
  }
  await removeQuietly(...doomed);
}

export function backupProcessor(ctx: WorkerContext) {
  return async (job: Job<BackupJobData>, token?: string) => {
    const data = backupJobSchema.parse(job.data);
    const log = jobLogger(ctx, job);
    return withDatabaseLock(ctx, job, token, async () => {
      try {
        await removeAbandonedTemps(ctx.config.backupDir);
        const row = await createBackup(
          { config: ctx.config, catalog: ctx.catalog, log },
          { type: data.type, jobId: String(job.id), onProgress: (p) => job.updateProgress(p) },
        );
        await applyRetention(ctx.catalog, currentSettings(ctx.config, ctx.catalog).maxBackups, log, ctx.config);
        return toBackupBody(row);
      } catch (err) {
        throw classify(err);
      }
    });
  };
}
