import type { Queue } from 'bullmq';
import { z } from 'zod';
import { AUTO_BACKUP_SCHEDULER, RESTORE_DRILL_JOB, type BackupJobData, type RestoreDrillJobData, type VerifyJobData } from './queues.js';
import { parseSchedule } from '../domain/schedule-spec.js';
import type { Settings } from '../catalog/settings.js';

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

/** The id of the one job scheduler that verifies every kept backup (VERIFY_SCHEDULE). */
export const VERIFY_SCHEDULER = 'scheduled-verify';

/**
 * The job that scheduler puts on the verify queue. It verifies nothing itself: the worker fans it
 * out into one ordinary verify job per kept backup, so each shows, retries and fails on its own.
 */
export const VERIFY_SWEEP_JOB = 'verify-kept-backups';
export const verifySweepJobSchema = z.object({ sweep: z.literal('kept') }).strict();
export type VerifySweepJobData = z.infer<typeof verifySweepJobSchema>;

export async function syncVerifySchedule(queue: Queue<VerifyJobData>, settings: Settings): Promise<void> {
  const spec = parseSchedule(settings.verifySchedule);
  if (spec.kind === 'off') {
    await queue.removeJobScheduler(VERIFY_SCHEDULER);
    return;
  }
  const repeat = spec.kind === 'every' ? { every: spec.every } : { pattern: spec.pattern };
  const data: VerifySweepJobData = { sweep: 'kept' };
  await queue.upsertJobScheduler(VERIFY_SCHEDULER, repeat, { name: VERIFY_SWEEP_JOB, data: data as unknown as VerifyJobData });
}

export async function nextScheduledVerification(queue: Queue<VerifyJobData>): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(VERIFY_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}

/** The id of the job scheduler that runs restore drills (RESTORE_DRILL_SCHEDULE) on the verify queue. */
export const RESTORE_DRILL_SCHEDULER = 'scheduled-restore-drill';

export async function syncDrillSchedule(queue: Queue<VerifyJobData>, settings: Settings): Promise<void> {
  const spec = parseSchedule(settings.restoreDrillSchedule);
  if (spec.kind === 'off') {
    await queue.removeJobScheduler(RESTORE_DRILL_SCHEDULER);
    return;
  }
  const repeat = spec.kind === 'every' ? { every: spec.every } : { pattern: spec.pattern };
  const data: RestoreDrillJobData = { drill: 'scheduled' };
  await queue.upsertJobScheduler(RESTORE_DRILL_SCHEDULER, repeat, { name: RESTORE_DRILL_JOB, data: data as unknown as VerifyJobData });
}

export async function nextScheduledDrill(queue: Queue<VerifyJobData>): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(RESTORE_DRILL_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}

/** Every schedule the settings ask for, in one call (start-up and `PUT /api/backups/config`). */
export async function syncSchedules(
  queues: { backup: Queue<BackupJobData>; verify: Queue<VerifyJobData> },
  settings: Settings,
): Promise<void> {
  await syncAutoBackup(queues.backup, settings);
  await syncVerifySchedule(queues.verify, settings);
  await syncDrillSchedule(queues.verify, settings);
}
