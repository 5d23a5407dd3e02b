import { z } from 'zod';
import { BACKUP_TYPES } from '../domain/backup-types.js';

export const backupJobSchema = z.object({ type: z.enum(BACKUP_TYPES) }).strict();
export type BackupJobData = z.infer<typeof backupJobSchema>;

export const verifyJobSchema = z
  .object({ backupId: z.number().int().positive(), mode: z.enum(['full', 'quick']).default('full') })
  .strict();
export type VerifyJobData = z.infer<typeof verifyJobSchema>;

/**
 * On the verify queue, beside the per-backup jobs: the WAL archive's verification (every
 * generation's snapshot, segments and chain) and the restore drill. Each has a job name of its
 * own, data of its own, and one pending job at a time.
 */
export const VERIFY_ARCHIVE_JOB = 'verify-archive';
export const verifyArchiveJobSchema = z.object({ archive: z.literal(true) }).strict();
export type VerifyArchiveJobData = z.infer<typeof verifyArchiveJobSchema>;
export const VERIFY_ARCHIVE_DEDUP_ID = 'verify-archive';

export const RESTORE_DRILL_JOB = 'restore-drill';
export const restoreDrillJobSchema = z.object({ drill: z.enum(['scheduled', 'api']) }).strict();
export type RestoreDrillJobData = z.infer<typeof restoreDrillJobSchema>;
export const RESTORE_DRILL_DEDUP_ID = 'restore-drill';

/** One pending backup per type: a second request for it joins the first. */
export const backupDedupId = (type: BackupJobData['type']) => `backup-${type}`;

/**
 * The deduplication id of a verify job: while one for a backup and mode is pending (waiting,
 * delayed or running), adding another returns it instead. The API, the verification sweep and
 * the follow-up after a backup all use it, so they share one pending job per backup.
 */
export const verifyDedupId = (backupId: number, mode: VerifyJobData['mode']) => `verify-${backupId}-${mode}`;

/** A restore target that is not one backup: the newest backup that passes full verification. */
export const LATEST_VALID = 'latest-valid';
/** A restore target: the last commit the WAL archive holds. */
export const LATEST = 'latest';

/** One backup by id, the newest valid one (chosen by the worker when the job runs), or the WAL archive's latest point. */
export const restoreJobSchema = z.union([
  z.object({ backupId: z.number().int().positive() }).strict(),
  z.object({ to: z.enum([LATEST_VALID, LATEST]) }).strict(),
  /** A moment in the WAL archive's recovery window. */
  z.object({ at: z.iso.datetime({ offset: true }) }).strict(),
]);
export type RestoreJobData = z.infer<typeof restoreJobSchema>;

/** One pending restore per target; a second request for it joins the first. */
export const restoreDedupId = (target: number | typeof LATEST_VALID | typeof LATEST | Date) =>
  `restore-${target instanceof Date ? `at-${target.getTime()}` : target}`;

/** The WAL archiver: one long-running job, no data. */
export const walJobSchema = z.object({}).strict();
export type WalJobData = z.infer<typeof walJobSchema>;

/** The archiver's job id: one job, so one archiver across every worker process. */
export const WAL_ARCHIVER_JOB_ID = 'wal-archiver';
