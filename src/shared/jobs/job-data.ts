import { z } from 'zod';
import { BACKUP_TYPES } from '../domain/backup-types.js';
import { LATEST, LATEST_VALID, MOMENT, type RestoreTarget } from '../domain/restore-target.js';

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

/**
 * A restore job's data is its target (`RestoreTarget`), as the API or the CLI read it: a backup by
 * id, the newest valid backup (chosen by the worker when the job runs), the WAL archive's latest
 * point, or a moment of its window (as the catalog writes its times).
 */
const restoreTargetSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('backup'), backupId: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal(LATEST_VALID) }).strict(),
  z.object({ kind: z.literal(LATEST) }).strict(),
  z.object({ kind: z.literal('moment'), at: MOMENT }).strict(),
]);

/**
 * Restore jobs queued before the target had a `kind` (still waiting, delayed or retried in Redis):
 * read as the target they meant. Their `at` was written by `toISOString`, as a moment is.
 */
const restoreJobBeforeKinds = z.union([
  z
    .object({ backupId: z.number().int().positive() })
    .strict()
    .transform(({ backupId }): RestoreTarget => ({ kind: 'backup', backupId })),
  z
    .object({ to: z.enum([LATEST_VALID, LATEST]) })
    .strict()
    .transform(({ to }): RestoreTarget => ({ kind: to })),
  z
    .object({ at: MOMENT })
    .strict()
    .transform(({ at }): RestoreTarget => ({ kind: 'moment', at })),
]);

export const restoreJobSchema = z.union([restoreTargetSchema, restoreJobBeforeKinds]);
export type RestoreJobData = z.output<typeof restoreJobSchema>;

/** One pending restore per target; a second request for it joins the first. */
export function restoreDedupId(target: RestoreTarget): string {
  switch (target.kind) {
    case 'backup':
      return `restore-${target.backupId}`;
    case 'moment':
      return `restore-at-${Date.parse(target.at)}`;
    default:
      return `restore-${target.kind}`;
  }
}

/** The WAL archiver: one long-running job, no data. */
export const walJobSchema = z.object({}).strict();
export type WalJobData = z.infer<typeof walJobSchema>;

/** The archiver's job id: one job, so one archiver across every worker process. */
export const WAL_ARCHIVER_JOB_ID = 'wal-archiver';
