import type { Queue } from 'bullmq';
import { AUTO_BACKUP_SCHEDULER, type BackupJobData } from './queues.js';
import type { Settings } from './settings.js';

/**
 * Makes the one auto-backup job scheduler match the settings. Upserting a fixed scheduler id is
 * idempotent, so any number of producers can call this without creating a second schedule.
 */
export async function syncAutoBackup(queue: Queue<BackupJobData>, settings: Settings): Promise<void> {
  if (settings.autoBackupEnabled) {
    await queue.upsertJobScheduler(
      AUTO_BACKUP_SCHEDULER,
      { every: settings.autoBackupInterval },
      { name: 'scheduled-backup', data: { type: 'scheduled' } },
    );
  } else {
    await queue.removeJobScheduler(AUTO_BACKUP_SCHEDULER);
  }
}

/** When the scheduler will next produce a backup, or null when automatic backups are off. */
export async function nextScheduledBackup(queue: Queue<BackupJobData>): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(AUTO_BACKUP_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}
