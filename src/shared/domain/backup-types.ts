/*
 * The words a backup is described by. The catalog stores them, job schemas and metrics label by
 * them, the codec reads and writes by them: they live here so that none of those imports another
 * for a word.
 */

/** How a backup was asked for; the runbook's `backup_type` column holds one of these. */
export const BACKUP_TYPES = ['manual', 'scheduled', 'pre-migration'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** Where a backup stands; the runbook's `status` column. */
export type BackupStatus = 'in_progress' | 'completed' | 'failed';

/** How a backup's bytes are compressed (`BACKUP_COMPRESSION`, and each backup's manifest). */
export const COMPRESSION_MODES = ['none', 'gzip', 'zstd'] as const;
export type CompressionMode = (typeof COMPRESSION_MODES)[number];
