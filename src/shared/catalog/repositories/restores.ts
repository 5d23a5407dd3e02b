import type Database from 'better-sqlite3';
import type { RestoreRow } from '../catalog-schema.js';
import { now } from './now.js';

export type RestoreUpdate = Partial<Omit<RestoreRow, 'id' | 'job_id' | 'backup_id' | 'started_at'>>;

/** `restore_log`: one row per restore job, from its start to its end. */
export class Restores {
  constructor(private readonly db: Database.Database) {}

  /** The row of a job, created on its first run; a rerun gets the same row back. */
  begin(jobId: string, backupId: number): RestoreRow {
    this.db
      .prepare(`INSERT OR IGNORE INTO restore_log (job_id, backup_id, started_at, status) VALUES (?, ?, ?, 'in_progress')`)
      .run(jobId, backupId, now());
    return this.db.prepare('SELECT * FROM restore_log WHERE job_id = ?').get(jobId) as RestoreRow;
  }

  /**
   * Marks a restore failed unless it has finished meanwhile: a run that lost its lock must not
   * overwrite the outcome of the run that took its row over. False when it had finished.
   */
  failInProgress(id: number, message: string): boolean {
    return (
      this.db
        .prepare(`UPDATE restore_log SET status = 'failed', completed_at = ?, error_message = ? WHERE id = ? AND status = 'in_progress'`)
        .run(now(), message, id).changes > 0
    );
  }

  update(id: number, fields: RestoreUpdate): RestoreRow {
    const keys = Object.keys(fields) as (keyof RestoreUpdate)[];
    if (keys.length) {
      // Column names come from RestoreRow's keys, never from input: values are bound.
      this.db.prepare(`UPDATE restore_log SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
    }
    return this.get(id)!;
  }

  byJob(jobId: string): RestoreRow | undefined {
    return this.db.prepare('SELECT * FROM restore_log WHERE job_id = ?').get(jobId) as RestoreRow | undefined;
  }

  get(id: number): RestoreRow | undefined {
    return this.db.prepare('SELECT * FROM restore_log WHERE id = ?').get(id) as RestoreRow | undefined;
  }

  /** When a restore last copied a backup into the live database, or null. */
  lastRestoredAt(): string | null {
    const row = this.db.prepare('SELECT max(restored_at) AS at FROM restore_log').get() as { at: string | null };
    return row.at;
  }

  /** Oldest first. */
  inProgress(): RestoreRow[] {
    return this.db.prepare(`SELECT * FROM restore_log WHERE status = 'in_progress' ORDER BY id`).all() as RestoreRow[];
  }
}
