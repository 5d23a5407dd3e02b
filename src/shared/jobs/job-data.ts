import { z } from 'zod';
import { BACKUP_TYPES } from '../domain/backup-types.js';
import { LATEST, LATEST_VALID, MOMENT, type RestoreTarget } from '../domain/restore-target.js';

export const backupJobSchema = z.object({ type: z.enum(BACKUP_TYPES) }).strict();
export type BackupJobData = z.infer<typeof backupJobSchema>;

/**
 * The verify queue's jobs, one kind each, all of which only read backups and write temp files: a
 * backup's verification, the WAL archive's (every generation's snapshot, segments and chain), a
 * restore drill, and the scheduled sweep, which verifies nothing itself but queues one backup
 * verification per kept backup (and one of the archive). The job's name on the board is its
 * kind's (`VERIFY_JOB_NAMES`).
 */
const verifyJobKinds = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('backup'), backupId: z.number().int().positive(), mode: z.enum(['full', 'quick']).default('full') }).strict(),
  z.object({ kind: z.literal('archive') }).strict(),
  z.object({ kind: z.literal('drill'), trigger: z.enum(['scheduled', 'api']) }).strict(),
  z.object({ kind: z.literal('sweep') }).strict(),
]);

/**
 * Verify jobs (and the schedulers' templates) stored before the kinds had a tag, read as the kind
 * they are: their shapes never overlap.
 */
const verifyJobBeforeKinds = z.union([
  z
    .object({ backupId: z.number().int().positive(), mode: z.enum(['full', 'quick']).default('full') })
    .strict()
    .transform(({ backupId, mode }) => ({ kind: 'backup' as const, backupId, mode })),
  z
    .object({ archive: z.literal(true) })
    .strict()
    .transform(() => ({ kind: 'archive' as const })),
  z
    .object({ drill: z.enum(['scheduled', 'api']) })
    .strict()
    .transform(({ drill }) => ({ kind: 'drill' as const, trigger: drill })),
  z
    .object({ sweep: z.literal('kept') })
    .strict()
    .transform(() => ({ kind: 'sweep' as const })),
]);

export const verifyJobSchema = z.union([verifyJobKinds, verifyJobBeforeKinds]);
export type VerifyJob = z.output<typeof verifyJobSchema>;
export type VerifyMode = Extract<VerifyJob, { kind: 'backup' }>['mode'];

/** Each verify job's name, by its kind. */
export const VERIFY_JOB_NAMES = {
  backup: 'verify',
  archive: 'verify-archive',
  drill: 'restore-drill',
  sweep: 'verify-kept-backups',
} as const satisfies Record<VerifyJob['kind'], string>;

/** One pending backup per type: a second request for it joins the first. */
export const backupDedupId = (type: BackupJobData['type']) => `backup-${type}`;

/**
 * The deduplication id of a verify job: while one for a backup and mode is pending (waiting,
 * delayed or running), adding another returns it instead. The API, the verification sweep and
 * the follow-up after a backup all use it, so they share one pending job per backup.
 */
export const verifyDedupId = (backupId: number, mode: VerifyMode) => `verify-${backupId}-${mode}`;

/**
 * One pending verify job per backup and mode, one archive verification, one drill; a sweep comes
 * from its scheduler, whose job ids keep it single.
 */
export function verifyJobDedupId(job: VerifyJob): string | undefined {
  switch (job.kind) {
    case 'backup':
      return verifyDedupId(job.backupId, job.mode);
    case 'archive':
      return 'verify-archive';
    case 'drill':
      return 'restore-drill';
    case 'sweep':
      return undefined;
  }
}

/** A verify job as BullMQ adds it: its kind's name, and the pending job of the same work it joins. */
export function verifyJobToAdd(data: VerifyJob, jobId: string): { name: string; data: VerifyJob; opts: JobIdentity } {
  const dedupId = verifyJobDedupId(data);
  return { name: VERIFY_JOB_NAMES[data.kind], data, opts: { jobId, ...(dedupId ? { deduplication: { id: dedupId } } : {}) } };
}

/** A job's id, and the deduplication id of the pending work it joins. */
export interface JobIdentity {
  jobId: string;
  deduplication?: { id: string };
}

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
