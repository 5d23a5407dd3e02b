/**
 * Job ids that name another job. A restore's safety backup is recorded under a job id derived from
 * the restore's, so that a rerun of the restore finds its safety backup, and the reaper can tell
 * which queue's job owns the backup row.
 */
const SAFETY_SUFFIX = ':safety';

/** The job id under which a restore job records its safety backup. */
export function safetyJobId(restoreJobId: string): string {
  return `${restoreJobId}${SAFETY_SUFFIX}`;
}

/** The restore job whose safety backup this job id names, or null when it names no safety backup. */
export function restoreJobOfSafety(jobId: string): string | null {
  return jobId.endsWith(SAFETY_SUFFIX) ? jobId.slice(0, -SAFETY_SUFFIX.length) : null;
}
