import type Database from 'better-sqlite3';
import type { RestoreDrillRow, WalVerificationRow } from '../catalog-schema.js';

export type NewWalVerification = Omit<WalVerificationRow, 'verified_at'> & { verified_at?: string };
export type NewRestoreDrill = Omit<RestoreDrillRow, 'id'>;

/**
 * `wal_verification` and `restore_drill`: what the checks of recoverability found, the archive's
 * verification per generation (the latest only; it shrinks the recovery window) and every
 * restore drill, kept as history.
 */
export class RecoveryChecks {
  constructor(private readonly db: Database.Database) {}

  /** Replaces the generation's last verification. */
  recordArchiveVerification(row: NewWalVerification): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO wal_verification (generation_id, verified_at, ok, segments_checked, snapshot_ok, bad_seq, bad_file, reason)
         VALUES (@generation_id, @verified_at, @ok, @segments_checked, @snapshot_ok, @bad_seq, @bad_file, @reason)`,
      )
      .run({ ...row, verified_at: row.verified_at ?? new Date().toISOString() });
  }

  /** The last verification of every generation still in the archive. */
  archiveVerifications(): WalVerificationRow[] {
    return this.db
      .prepare('SELECT v.* FROM wal_verification v JOIN wal_generation g ON g.id = v.generation_id ORDER BY v.generation_id')
      .all() as WalVerificationRow[];
  }

  recordDrill(row: NewRestoreDrill): RestoreDrillRow {
    const { lastInsertRowid } = this.db
      .prepare(
        `INSERT INTO restore_drill (started_at, completed_at, ok, duration_ms, trigger, targets, reason)
         VALUES (@started_at, @completed_at, @ok, @duration_ms, @trigger, @targets, @reason)`,
      )
      .run(row);
    return this.db.prepare('SELECT * FROM restore_drill WHERE id = ?').get(lastInsertRowid) as RestoreDrillRow;
  }

  lastDrill(): RestoreDrillRow | undefined {
    return this.db.prepare('SELECT * FROM restore_drill ORDER BY id DESC LIMIT 1').get() as RestoreDrillRow | undefined;
  }

  lastSuccessfulDrill(): RestoreDrillRow | undefined {
    return this.db.prepare('SELECT * FROM restore_drill WHERE ok = 1 ORDER BY id DESC LIMIT 1').get() as RestoreDrillRow | undefined;
  }

  /** Newest first. */
  drills(limit = 20): RestoreDrillRow[] {
    return this.db.prepare('SELECT * FROM restore_drill ORDER BY id DESC LIMIT ?').all(limit) as RestoreDrillRow[];
  }
}
