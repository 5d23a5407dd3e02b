import path from 'node:path';
import type { BackupRow, RestoreRow, VerificationRow } from '../catalog/catalog.js';

/** A backup as the runbook's API shows it, plus the fields this service adds at the end. */
export function toBackupBody(row: BackupRow, lastVerification?: VerificationRow) {
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
export function toBackupListItem(row: BackupRow) {
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

export function toVerificationBody(row: VerificationRow) {
  return {
    verifiedAt: row.verified_at,
    mode: row.mode,
    valid: row.valid === 1,
    message: row.message,
    checks: JSON.parse(row.checks) as unknown,
  };
}

export function toRestoreBody(row: RestoreRow) {
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
