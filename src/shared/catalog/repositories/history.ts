import type Database from 'better-sqlite3';
import { DAMAGED_REASON_PREFIX } from '../../domain/errors.js';

/** How many of the newest verifications per backup, and restores, history pruning always keeps. */
export const HISTORY_KEPT = 10;

export interface DatabaseDamage {
  backupId: number;
  at: string;
  message: string;
}

export interface Pruned {
  backups: number;
  verifications: number;
  restores: number;
}

/** What the backup, verification and restore logs say together, and keeping them from growing for ever. */
export class History {
  constructor(private readonly db: Database.Database) {}

  /**
   * The newest backup that found the live database damaged, while nothing since shows it sound
   * again: no backup completed after it, and no restore completed after it.
   */
  databaseDamage(): DatabaseDamage | undefined {
    const row = this.db
      .prepare(
        `SELECT id, completed_at, error_message FROM backup_log
         WHERE status = 'failed' AND substr(error_message, 1, length(?)) = ? ORDER BY id DESC LIMIT 1`,
      )
      .get(DAMAGED_REASON_PREFIX, DAMAGED_REASON_PREFIX) as { id: number; completed_at: string; error_message: string } | undefined;
    if (!row) return undefined;
    const since =
      this.db.prepare(`SELECT 1 FROM backup_log WHERE status = 'completed' AND id > ? LIMIT 1`).get(row.id) ??
      this.db.prepare(`SELECT 1 FROM restore_log WHERE status = 'completed' AND completed_at > ? LIMIT 1`).get(row.completed_at);
    return since ? undefined : { backupId: row.id, at: row.completed_at, message: row.error_message };
  }

  /**
   * Deletes history older than `before`: failed backup rows, verifications and finished restores.
   * Kept whatever their age: the newest backup row (an old failure may be the last word on
   * backups), the last `keep` verifications of each backup and its last one of each mode
   * (retention trusts a backup by its last full verification), and the last `keep` restores.
   * Dates are compared with julianday() so rows in SQLite's own `YYYY-MM-DD HH:MM:SS` format
   * count too; a date it cannot read keeps its row.
   */
  prune(before: Date, keep = HISTORY_KEPT): Pruned {
    const cutoff = before.toISOString();
    return this.db
      .transaction(() => {
        const backups = this.db
          .prepare(
            `DELETE FROM backup_log WHERE status = 'failed'
               AND julianday(coalesce(completed_at, started_at)) < julianday(?)
               AND id != (SELECT max(id) FROM backup_log)`,
          )
          .run(cutoff).changes;
        const verifications = this.db
          .prepare(
            `DELETE FROM verification WHERE id IN (
               SELECT id FROM (
                 SELECT id, verified_at,
                   row_number() OVER (PARTITION BY backup_id ORDER BY id DESC) AS newest,
                   row_number() OVER (PARTITION BY backup_id, mode ORDER BY id DESC) AS newest_of_mode
                 FROM verification)
               WHERE newest > ? AND newest_of_mode > 1 AND julianday(verified_at) < julianday(?))`,
          )
          .run(keep, cutoff).changes;
        const restores = this.db
          .prepare(
            `DELETE FROM restore_log WHERE status != 'in_progress'
               AND julianday(coalesce(completed_at, started_at)) < julianday(?)
               AND id NOT IN (SELECT id FROM restore_log ORDER BY id DESC LIMIT ?)`,
          )
          .run(cutoff, keep).changes;
        return { backups, verifications, restores };
      })
      .immediate();
  }
}
