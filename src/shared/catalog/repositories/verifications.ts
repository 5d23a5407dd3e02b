import type Database from 'better-sqlite3';
import type { VerificationRow } from '../catalog-schema.js';
import { now } from './now.js';

export type VerificationMode = VerificationRow['mode'];

/** `verification`: every check of a backup, kept as history. */
export class Verifications {
  constructor(private readonly db: Database.Database) {}

  record(backupId: number, mode: VerificationMode, valid: boolean, message: string, checks: unknown): VerificationRow {
    const id = this.db
      .prepare('INSERT INTO verification (backup_id, mode, verified_at, valid, message, checks) VALUES (?, ?, ?, ?, ?, ?)')
      .run(backupId, mode, now(), valid ? 1 : 0, message, JSON.stringify(checks)).lastInsertRowid;
    return this.db.prepare('SELECT * FROM verification WHERE id = ?').get(id) as VerificationRow;
  }

  /** The last `full` verification: the one retention trusts, since a quick one skips the checksum's partner checks. */
  lastFull(backupId: number): VerificationRow | undefined {
    return this.db.prepare(`SELECT * FROM verification WHERE backup_id = ? AND mode = 'full' ORDER BY id DESC LIMIT 1`).get(backupId) as
      VerificationRow | undefined;
  }

  last(backupId: number): VerificationRow | undefined {
    return this.db.prepare('SELECT * FROM verification WHERE backup_id = ? ORDER BY id DESC LIMIT 1').get(backupId) as
      VerificationRow | undefined;
  }
}
