import type Database from 'better-sqlite3';
import type { BackupRow, CopyRow } from '../catalog-schema.js';
import { BACKUP_COLUMNS, BACKUP_FROM } from './backups.js';
import { now } from './now.js';

/** `backup_copy`: which backups have a good copy elsewhere (the mirror). */
export class Copies {
  constructor(private readonly db: Database.Database) {}

  record(backupId: number, location: string, ok: boolean, error: string | null = null): void {
    this.db
      .prepare(
        `INSERT INTO backup_copy (backup_id, location, status, checked_at, error_message) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(backup_id, location) DO UPDATE SET status = excluded.status, checked_at = excluded.checked_at,
           error_message = excluded.error_message`,
      )
      .run(backupId, location, ok ? 'ok' : 'failed', now(), error);
  }

  at(location: string): CopyRow[] {
    return this.db.prepare('SELECT * FROM backup_copy WHERE location = ? ORDER BY backup_id').all(location) as CopyRow[];
  }

  /** Completed backups without a good copy at `location`, oldest first. */
  missingAt(location: string): BackupRow[] {
    return this.db
      .prepare(
        `SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM backup_copy c WHERE c.backup_id = l.id AND c.location = ? AND c.status = 'ok')
         ORDER BY l.id`,
      )
      .all(location) as BackupRow[];
  }
}
