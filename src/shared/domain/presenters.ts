import path from 'node:path';
import type { BackupStatus, BackupType, CompressionMode } from './backup-types.js';

/*
 * The bodies are made from plain records: the fields of the catalog's rows they show, named as
 * the catalog's columns (its BackupRow, VerificationRow and RestoreRow have them all), so the
 * vocabulary does not import the catalog.
 */

export interface BackupRecord {
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
}

export interface VerificationRecord {
  mode: 'full' | 'quick';
  verified_at: string;
  valid: number;
  message: string;
  /** JSON: the checks' outcomes. */
  checks: string;
}

export interface RestoreRecord {
  id: number;
  backup_id: number;
  safety_backup_id: number | null;
  started_at: string;
  restored_at: string | null;
  completed_at: string | null;
  status: 'in_progress' | 'completed' | 'failed' | 'rolled_back';
  error_message: string | null;
}

/** A backup as the runbook's API shows it, plus the fields this service adds at the end. */
export function toBackupBody(row: BackupRecord, lastVerification?: VerificationRecord) {
  return {
    id: row.id,
    fileName: path.basename(row.file_path),
    filePath: row.file_path,
    backupType: row.backup_type,
    fileSize: row.file_size_bytes,
    checksum: row.checksum,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    status: row.status,
    errorMessage: row.error_message,
    compression: row.compression ?? 'none',
    ...(lastVerification !== undefined ? { lastVerification: toVerificationBody(lastVerification) } : {}),
  };
}

export type BackupBody = ReturnType<typeof toBackupBody>;

/** The short form the runbook's list shows. */
export function toBackupListItem(row: BackupRecord) {
  return {
    id: row.id,
    fileName: path.basename(row.file_path),
    fileSize: row.file_size_bytes,
    status: row.status,
    startedAt: row.started_at,
    backupType: row.backup_type,
    completedAt: row.completed_at,
  };
}

export function toVerificationBody(row: VerificationRecord) {
  return {
    verifiedAt: row.verified_at,
    mode: row.mode,
    valid: row.valid === 1,
    message: row.message,
    checks: JSON.parse(row.checks) as unknown,
  };
}

export function toRestoreBody(row: RestoreRecord) {
  return {
    id: row.id,
    backupId: row.backup_id,
    safetyBackupId: row.safety_backup_id,
    startedAt: row.started_at,
    restoredAt: row.restored_at,
    completedAt: row.completed_at,
    status: row.status,
    errorMessage: row.error_message,
  };
}
