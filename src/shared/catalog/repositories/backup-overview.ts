import type Database from 'better-sqlite3';
import type { BackupRow, Statistics } from '../catalog-schema.js';
import type { BackupStatus, BackupType } from '../../domain/backup-types.js';
import { BACKUP_COLUMNS, BACKUP_FROM } from './backups.js';

/**
 * `backup_log` read over every backup at once: retention's view of a group, the runbook's
 * statistics and the counts for metrics (one backup's row is `backups.ts`).
 */
export class BackupOverview {
  private statsCache: { version: number; changes: number; value: Statistics } | undefined;

  constructor(private readonly db: Database.Database) {}

  /**
   * Retention's view of one group of completed backups (`safety`: `pre-migration`; `regular`: the
   * rest): those beyond its `keep` newest, newest first, and the ids it keeps whatever their age —
   * the newest whose last full verification passed with no failed check after it, and the newest
   * not known to be invalid (which covers nothing verified yet). In SQL, so a large catalog costs
   * a few indexed lookups, not a pass over every row from the worker's event loop.
   */
  retentionView(group: 'regular' | 'safety', keep: number): { beyond: BackupRow[]; protectedIds: number[] } {
    const inGroup = `l.status = 'completed' AND l.backup_type ${group === 'safety' ? '=' : '!='} 'pre-migration'`;
    const beyond = this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE ${inGroup} ORDER BY l.id DESC LIMIT -1 OFFSET ?`)
      .all(keep) as BackupRow[];
    if (!beyond.length) return { beyond, protectedIds: [] };
    const last = (mode: string) => `(SELECT v.valid FROM verification v WHERE v.backup_id = l.id ${mode} ORDER BY v.id DESC LIMIT 1)`;
    const newest = (condition: string) =>
      (
        this.db.prepare(`SELECT l.id FROM backup_log l WHERE ${inGroup} AND ${condition} ORDER BY l.id DESC LIMIT 1`).get() as
          { id: number } | undefined
      )?.id;
    const notKnownInvalid = `coalesce(${last('')}, 1) = 1`;
    const ids = [newest(`${notKnownInvalid} AND ${last(`AND v.mode = 'full'`)} = 1`), newest(notKnownInvalid)];
    return { beyond, protectedIds: ids.filter((id): id is number => id !== undefined) };
  }

  /**
   * The runbook's statistics. Cached until any connection commits to the catalog
   * (`data_version` covers other connections, `total_changes` this one), so listing stays cheap
   * with a large catalog.
   */
  statistics(): Statistics {
    const version = this.db.pragma('data_version', { simple: true }) as number;
    const changes = (this.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    if (this.statsCache && this.statsCache.version === version && this.statsCache.changes === changes) {
      return this.statsCache.value;
    }
    const row = this.db
      .prepare(
        `SELECT
           sum(status = 'completed') AS total,
           coalesce(sum(CASE WHEN status = 'completed' THEN file_size_bytes END), 0) AS size,
           min(CASE WHEN status = 'completed' THEN started_at END) AS oldest,
           max(CASE WHEN status = 'completed' THEN started_at END) AS newest,
           sum(status = 'failed') AS failed
         FROM backup_log`,
      )
      .get() as { total: number | null; size: number; oldest: string | null; newest: string | null; failed: number | null };
    const value: Statistics = {
      totalBackups: row.total ?? 0,
      totalSize: row.size,
      oldestBackup: row.oldest,
      newestBackup: row.newest,
      failedBackups: row.failed ?? 0,
    };
    this.statsCache = { version, changes, value };
    return value;
  }

  /** How many rows of each type and status the catalog holds, for metrics. */
  counts(): { type: BackupType; status: BackupStatus; n: number }[] {
    return this.db.prepare('SELECT backup_type AS type, status, count(*) AS n FROM backup_log GROUP BY 1, 2').all() as {
      type: BackupType;
      status: BackupStatus;
      n: number;
    }[];
  }
}
