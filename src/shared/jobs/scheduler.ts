import type { Queue } from 'bullmq';
import { AUTO_BACKUP_SCHEDULER, VERIFY_JOB_NAMES, type StoredJobOf, type VerifyJob } from './queues.js';
import { parseSchedule } from '../domain/schedule-spec.js';
import type { Settings } from '../catalog/settings.js';

/** The queues the schedulers put jobs on, typed by what each holds. */
type BackupQueue = Queue<StoredJobOf<'backup'>>;
type VerifyQueue = Queue<StoredJobOf<'verify'>>;

/**
 * Makes the one auto-backup job scheduler match the settings. Upserting a fixed scheduler id is
 * idempotent, so any number of producers can call this without creating a second schedule.
 */
export async function syncAutoBackup(queue: BackupQueue, settings: Settings): Promise<void> {
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
export async function nextScheduledBackup(queue: BackupQueue): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(AUTO_BACKUP_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}

/** The id of the one job scheduler that verifies every kept backup (VERIFY_SCHEDULE). */
export const VERIFY_SCHEDULER = 'scheduled-verify';

/**
 * The scheduler puts a sweep on the verify queue (`VERIFY_JOB_NAMES.sweep`). It verifies nothing
 * itself: the worker fans it out into one ordinary verify job per kept backup, so each shows,
 * retries and fails on its own.
 */
export async function syncVerifySchedule(queue: VerifyQueue, settings: Settings): Promise<void> {
  const spec = parseSchedule(settings.verifySchedule);
  if (spec.kind === 'off') {
    await queue.removeJobScheduler(VERIFY_SCHEDULER);
    return;
  }
  const repeat = spec.kind === 'every' ? { every: spec.every } : { pattern: spec.pattern };
  const sweep: VerifyJob = { kind: 'sweep' };
  await queue.upsertJobScheduler(VERIFY_SCHEDULER, repeat, { name: VERIFY_JOB_NAMES.sweep, data: sweep });
}

export async function nextScheduledVerification(queue: VerifyQueue): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(VERIFY_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}

/** The id of the job scheduler that runs restore drills (RESTORE_DRILL_SCHEDULE) on the verify queue. */
export const RESTORE_DRILL_SCHEDULER = 'scheduled-restore-drill';

export async function syncDrillSchedule(queue: VerifyQueue, settings: Settings): Promise<void> {
  const spec = parseSchedule(settings.restoreDrillSchedule);
  if (spec.kind === 'off') {
    await queue.removeJobScheduler(RESTORE_DRILL_SCHEDULER);
    return;
  }
  const repeat = spec.kind === 'every' ? { every: spec.every } : { pattern: spec.pattern };
  const drill: VerifyJob = { kind: 'drill', trigger: 'scheduled' };
  await queue.upsertJobScheduler(RESTORE_DRILL_SCHEDULER, repeat, { name: VERIFY_JOB_NAMES.drill, data: drill });
}

export async function nextScheduledDrill(queue: VerifyQueue): Promise<string | null> {
  const scheduler = await queue.getJobScheduler(RESTORE_DRILL_SCHEDULER);
  return scheduler?.next ? new Date(scheduler.next).toISOString() : null;
}

/** Every schedule the settings ask for, in one call (start-up and `PUT /api/backups/config`). */
export async function syncSchedules(queues: { backup: BackupQueue; verify: VerifyQueue }, settings: Settings): Promise<void> {
  await syncAutoBackup(queues.backup, settings);
  await syncVerifySchedule(queues.verify, settings);
  await syncDrillSchedule(queues.verify, settings);
}
