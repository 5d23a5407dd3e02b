/** The types of the catalog's rows as SQL returns them, what a manifest puts back, and the backups' statistics. */
import type { BackupStatus, BackupType, CompressionMode } from '../domain/backup-types.js';

export interface BackupRow {
  id: number;
  backup_type: BackupType;
  file_path: string;
  file_size_bytes: number | null;
  started_at: string;
  completed_at: string | null;
  status: BackupStatus;
  error_message: string | null;
  checksum: string | null;
  compression: CompressionMode | null;
  /** Id of the key the file is encrypted with; null when it is not encrypted. */
  encryption: string | null;
  page_size: number | null;
  user_version: number | null;
  database_size_bytes: number | null;
  job_id: string | null;
}

export interface CopyRow {
  backup_id: number;
  location: string;
  status: 'ok' | 'failed';
  checked_at: string;
  error_message: string | null;
}

/** What a manifest knows about a backup: enough to put its rows back. */
export interface ImportedBackup {
  id: number;
  type: BackupType;
  filePath: string;
  fileSize: number;
  startedAt: string;
  completedAt: string;
  checksum: string;
  jobId: string | null;
  compression: CompressionMode;
  encryption: string | null;
  pageSize: number | null;
  userVersion: number | null;
  databaseSize: number | null;
}

export interface VerificationRow {
  id: number;
  backup_id: number;
  mode: 'full' | 'quick';
  verified_at: string;
  valid: number;
  message: string;
  checks: string;
}

export interface RestoreRow {
  id: number;
  job_id: string | null;
  backup_id: number;
  safety_backup_id: number | null;
  started_at: string;
  restored_at: string | null;
  completed_at: string | null;
  status: 'in_progress' | 'completed' | 'failed' | 'rolled_back';
  error_message: string | null;
}

/** A run of the WAL archive that can be replayed onto its snapshot without a gap. */
export interface WalGenerationRow {
  id: number;
  started_at: string;
  /** Why it began: the first start, or the gap that ended the one before. */
  reason: string;
  page_size: number;
  /**
   * Where the WAL stood when it began (its salts, offset and running checksum), from which its
   * segments continue; null when the WAL was empty then (its first header starts it).
   */
  start_salt1: number | null;
  start_salt2: number | null;
  start_offset: number | null;
  start_checksum0: number | null;
  start_checksum1: number | null;
  big_endian: number | null;
  /** The backup its segments replay onto; null until that backup completed. */
  snapshot_backup_id: number | null;
  /** When that backup completed: the earliest moment this generation can restore to. */
  snapshot_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  /**
   * Its segments' count, bytes and first and last read time, kept with each one recorded: a week
   * of one-second segments is 600,000 rows, which `/health` must not count on every request.
   */
  segments: number;
  bytes: number;
  first_read_at: string | null;
  last_read_at: string | null;
}

/** Committed WAL frames shipped in one sync: `first_offset`..`last_offset` of the WAL with these salts. */
export interface WalSegmentRow {
  generation_id: number;
  seq: number;
  file_name: string;
  salt1: number;
  salt2: number;
  big_endian: number;
  page_size: number;
  first_offset: number;
  last_offset: number;
  /** The WAL's running checksum before the first frame and after the last: the chain continues segment to segment. */
  start_checksum0: number;
  start_checksum1: number;
  end_checksum0: number;
  end_checksum1: number;
  frames: number;
  commits: number;
  /** Database size in pages after the segment's last commit. */
  db_size_pages: number;
  /** When the frames were read from the WAL: every transaction in it had committed by then. */
  read_at: string;
  size_bytes: number;
  /** SHA-256 of the stored (compressed, maybe encrypted) segment file. */
  checksum: string;
  compression: CompressionMode;
  encryption: string | null;
  /** 1 copied to the mirror, 0 the copy failed, null not tried (or no mirror). */
  mirrored: number | null;
}

/** One object in the bucket holding segments `first_seq`..`last_seq` of a generation (wal/bucket-format.ts). */
export interface WalPackRow {
  name: string;
  generation_id: number;
  first_seq: number;
  last_seq: number;
  size_bytes: number;
  created_at: string;
}

/** The last archive verification of one WAL generation. */
export interface WalVerificationRow {
  generation_id: number;
  verified_at: string;
  ok: number;
  segments_checked: number;
  /** Whether its snapshot backup exists and passed verification. */
  snapshot_ok: number;
  /** The first segment that failed (its sequence number and file), null when none did. */
  bad_seq: number | null;
  bad_file: string | null;
  reason: string | null;
}

/** One restore drill: restores into temp files, never the live database. */
export interface RestoreDrillRow {
  id: number;
  started_at: string;
  completed_at: string;
  ok: number;
  /** How long the restore of the latest point took: the measured RTO. */
  duration_ms: number;
  /** `scheduled`, `api`, `cli`. */
  trigger: string;
  /** JSON: each target's outcome (see DrillTarget in shared/wal/drill.ts). */
  targets: string;
  reason: string | null;
}

export interface Statistics {
  totalBackups: number;
  totalSize: number;
  oldestBackup: string | null;
  newestBackup: string | null;
  failedBackups: number;
}
