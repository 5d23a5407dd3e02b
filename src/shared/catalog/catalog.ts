import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  SCHEMA,
  type BackupRow,
  type BackupStatus,
  type BackupType,
  type CopyRow,
  type ImportedBackup,
  type RestoreRow,
  type Statistics,
  type VerificationRow,
} from './catalog-schema.js';
import type { CompressionMode } from '../runtime/config.js';
import { DAMAGED_REASON_PREFIX } from '../domain/errors.js';

export { BACKUP_TYPES } from './catalog-schema.js';
export type * from './catalog-schema.js';

const BACKUP_COLUMNS = `l.*, d.compression, d.encryption, d.page_size, d.user_version, d.database_size_bytes, d.job_id`;
const BACKUP_FROM = `backup_log l LEFT JOIN backup_detail d ON d.backup_id = l.id`;

const now = () => new Date().toISOString();

/** completeBackup found its row no longer `in_progress` (settled as failed meanwhile, or deleted). */
export class BackupNotInProgress extends Error {
  override name = 'BackupNotInProgress';
  constructor(id: number, status: string | undefined) {
    super(`backup ${id} is ${status ?? 'gone from the catalog'}, not in progress: it was settled while this run was writing it`);
  }
}

/**
 * The backup catalog: one SQLite file in BACKUP_DIR, shared by the producer, every worker and the
 * CLI. WAL and a busy timeout let them all write to it without "database is locked" errors.
 */
export class Catalog {
  readonly db: Database.Database;
  private statsCache: { version: number; changes: number; value: Statistics } | undefined;

  constructor(
    readonly file: string,
    { busyTimeout = 10_000, readonly = false }: { busyTimeout?: number; readonly?: boolean } = {},
  ) {
    if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file, { readonly, fileMustExist: readonly });
    if (!readonly) fs.chmodSync(file, 0o600);
    this.db.pragma(`busy_timeout = ${busyTimeout}`);
    if (!readonly) {
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode never corrupts the catalog; a power cut may lose its last commits.
      // FULL made every commit wait for the disk on the worker's main thread, behind the flush
      // of a freshly written backup (up to ~450 ms measured), stalling BullMQ's lock renewal.
      // What a lost commit could leave is repaired: a published backup file has its manifest
      // (reindex), and an `in_progress` row is settled by the reaper.
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(SCHEMA);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- backups -------------------------------------------------------------------------------

  /**
   * Starts the catalog row of a backup job. A job that runs again (a retry, or a rerun after its
   * worker died) takes over its own row instead of adding another.
   */
  beginBackup(
    type: BackupType,
    filePath: string,
    jobId: string | null,
    compression: CompressionMode,
    encryption: string | null = null,
  ): number {
    // Immediate: a read-then-write transaction that starts deferred fails at once with
    // SQLITE_BUSY (no busy wait) when another process commits between its read and its write.
    return this.db
      .transaction(() => {
        if (jobId) {
          const existing = this.db.prepare('SELECT backup_id FROM backup_detail WHERE job_id = ?').get(jobId) as
            { backup_id: number } | undefined;
          if (existing) {
            this.db
              .prepare(
                `UPDATE backup_log SET status = 'in_progress', file_path = ?, started_at = ?, completed_at = NULL,
                 error_message = NULL, checksum = NULL, file_size_bytes = NULL WHERE id = ?`,
              )
              .run(filePath, now(), existing.backup_id);
            this.db
              .prepare('UPDATE backup_detail SET compression = ?, encryption = ? WHERE backup_id = ?')
              .run(compression, encryption, existing.backup_id);
            return existing.backup_id;
          }
        }
        const id = Number(
          this.db
            .prepare(`INSERT INTO backup_log (backup_type, file_path, started_at, status) VALUES (?, ?, ?, 'in_progress')`)
            .run(type, filePath, now()).lastInsertRowid,
        );
        this.db
          .prepare('INSERT INTO backup_detail (backup_id, job_id, compression, encryption) VALUES (?, ?, ?, ?)')
          .run(id, jobId, compression, encryption);
        return id;
      })
      .immediate();
  }

  completeBackup(
    id: number,
    done: {
      filePath: string;
      fileSize: number;
      checksum: string;
      pageSize: number;
      userVersion: number;
      databaseSize: number;
      completedAt?: string;
    },
  ): void {
    this.db.transaction(() => {
      // Only a row still in progress: one settled meanwhile (the reaper took its run for dead)
      // must not come back as completed, whatever this run produced.
      const changed = this.db
        .prepare(
          `UPDATE backup_log SET status = 'completed', file_path = ?, file_size_bytes = ?, checksum = ?, completed_at = ?,
             error_message = NULL WHERE id = ? AND status = 'in_progress'`,
        )
        .run(done.filePath, done.fileSize, done.checksum, done.completedAt ?? now(), id).changes;
      if (!changed) {
        const row = this.db.prepare('SELECT status FROM backup_log WHERE id = ?').get(id) as { status: string } | undefined;
        throw new BackupNotInProgress(id, row?.status);
      }
      this.db
        .prepare('UPDATE backup_detail SET page_size = ?, user_version = ?, database_size_bytes = ? WHERE backup_id = ?')
        .run(done.pageSize, done.userVersion, done.databaseSize, id);
    })();
  }

  /**
   * Only a row still in progress: a run that lost its lock must not overwrite the outcome of the
   * run that took its row over (a rerun of its job), nor the reason the reaper recorded.
   */
  failBackup(id: number, message: string): void {
    this.db
      .prepare(
        `UPDATE backup_log SET status = 'failed', completed_at = ?, error_message = ?, file_size_bytes = NULL
           WHERE id = ? AND status = 'in_progress'`,
      )
      .run(now(), message, id);
  }

  getBackup(id: number): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.id = ?`).get(id) as BackupRow | undefined;
  }

  /** A backup by its file's path, or by its file name alone. */
  getBackupByFile(file: string): BackupRow | undefined {
    return (
      (this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.file_path = ?`).get(file) as BackupRow | undefined) ??
      // instr, not LIKE: a file name's `_` would be a wildcard.
      (
        this.db
          .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE instr(l.file_path, ?) > 0 ORDER BY l.id DESC`)
          .all(file) as BackupRow[]
      ).find((r) => path.basename(r.file_path) === file)
    );
  }

  /**
   * Puts back a completed backup known from its manifest, keeping its id, so ids that operators
   * and logs refer to stay valid after a rebuild. Refuses an id already taken, and a file that a
   * completed row already lists under another id (two rows for one file: retention of one would
   * delete the other's backup).
   */
  importBackup(b: ImportedBackup): 'imported' | 'id_taken' | 'file_taken' {
    return this.db
      .transaction(() => {
        const taken = this.db.prepare('SELECT 1 FROM backup_log WHERE id = ?').get(b.id);
        if (taken) return 'id_taken';
        const name = path.basename(b.filePath);
        const sameFile = this.db
          .prepare(`SELECT file_path FROM backup_log WHERE status = 'completed' AND instr(file_path, ?) > 0`)
          .all(name) as { file_path: string }[];
        if (sameFile.some((r) => path.basename(r.file_path) === name)) return 'file_taken';
        this.db
          .prepare(
            `INSERT INTO backup_log (id, backup_type, file_path, file_size_bytes, started_at, completed_at, status, checksum)
           VALUES (?, ?, ?, ?, ?, ?, 'completed', ?)`,
          )
          .run(b.id, b.type, b.filePath, b.fileSize, b.startedAt, b.completedAt, b.checksum);
        // A job id seen twice (a manifest copied by hand) must not block the import.
        const jobFree = b.jobId && !this.db.prepare('SELECT 1 FROM backup_detail WHERE job_id = ?').get(b.jobId);
        this.db
          .prepare(
            `INSERT INTO backup_detail (backup_id, job_id, compression, encryption, page_size, user_version, database_size_bytes)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(b.id, jobFree ? b.jobId : null, b.compression, b.encryption, b.pageSize, b.userVersion, b.databaseSize);
        return 'imported' as const;
      })
      .immediate();
  }

  /** The highest backup id this catalog has handed out, deleted rows included (AUTOINCREMENT keeps it). */
  backupIdCeiling(): number {
    const seq = this.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'backup_log'`).get() as { seq: number } | undefined;
    const max = this.db.prepare('SELECT max(id) AS m FROM backup_log').get() as { m: number | null };
    return Math.max(seq?.seq ?? 0, max.m ?? 0);
  }

  // ---- copies of a backup elsewhere (the mirror) ---------------------------------------------

  recordCopy(backupId: number, location: string, ok: boolean, error: string | null = null): void {
    this.db
      .prepare(
        `INSERT INTO backup_copy (backup_id, location, status, checked_at, error_message) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(backup_id, location) DO UPDATE SET status = excluded.status, checked_at = excluded.checked_at,
           error_message = excluded.error_message`,
      )
      .run(backupId, location, ok ? 'ok' : 'failed', now(), error);
  }

  copies(location: string): CopyRow[] {
    return this.db.prepare('SELECT * FROM backup_copy WHERE location = ? ORDER BY backup_id').all(location) as CopyRow[];
  }

  /** Completed backups without a good copy at `location`, oldest first. */
  backupsWithoutCopy(location: string): BackupRow[] {
    return this.db
      .prepare(
        `SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM backup_copy c WHERE c.backup_id = l.id AND c.location = ? AND c.status = 'ok')
         ORDER BY l.id`,
      )
      .all(location) as BackupRow[];
  }

  getBackupByJob(jobId: string): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE d.job_id = ?`).get(jobId) as BackupRow | undefined;
  }

  /** Newest first. `before` is a keyset cursor (an id), which stays fast on deep pages. */
  listBackups({
    limit,
    offset = 0,
    before,
    status,
  }: {
    limit: number;
    offset?: number;
    before?: number;
    status?: BackupStatus;
  }): BackupRow[] {
    const where: string[] = [];
    const args: (number | string)[] = [];
    if (before !== undefined) {
      where.push('l.id < ?');
      args.push(before);
    }
    if (status) {
      where.push('l.status = ?');
      args.push(status);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} ${clause} ORDER BY l.id DESC LIMIT ? OFFSET ?`)
      .all(...args, limit, offset) as BackupRow[];
  }

  countBackups(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM backup_log').get() as { n: number }).n;
  }

  /** Newest completed backups first. */
  completedBackups(): BackupRow[] {
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed' ORDER BY l.id DESC`)
      .all() as BackupRow[];
  }

  /** Rows left `in_progress`, for the reaper that settles rows whose job is gone. */
  inProgressBackups(): BackupRow[] {
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'in_progress' ORDER BY l.id`)
      .all() as BackupRow[];
  }

  deleteBackup(id: number): void {
    this.db.prepare('DELETE FROM backup_log WHERE id = ?').run(id);
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
  backupCounts(): { type: BackupType; status: BackupStatus; n: number }[] {
    return this.db.prepare('SELECT backup_type AS type, status, count(*) AS n FROM backup_log GROUP BY 1, 2').all() as {
      type: BackupType;
      status: BackupStatus;
      n: number;
    }[];
  }

  lastSuccessfulBackup(): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed' ORDER BY l.id DESC LIMIT 1`).get() as
      BackupRow | undefined;
  }

  /**
   * The newest backup that found the live database damaged, while nothing since shows it sound
   * again: no backup completed after it, and no restore completed after it.
   */
  databaseDamage(): { backupId: number; at: string; message: string } | undefined {
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

  // ---- verification --------------------------------------------------------------------------

  recordVerification(backupId: number, mode: 'full' | 'quick', valid: boolean, message: string, checks: unknown): VerificationRow {
    const id = this.db
      .prepare('INSERT INTO verification (backup_id, mode, verified_at, valid, message, checks) VALUES (?, ?, ?, ?, ?, ?)')
      .run(backupId, mode, now(), valid ? 1 : 0, message, JSON.stringify(checks)).lastInsertRowid;
    return this.db.prepare('SELECT * FROM verification WHERE id = ?').get(id) as VerificationRow;
  }

  /** The last `full` verification: the one retention trusts, since a quick one skips the checksum's partner checks. */
  lastFullVerification(backupId: number): VerificationRow | undefined {
    return this.db.prepare(`SELECT * FROM verification WHERE backup_id = ? AND mode = 'full' ORDER BY id DESC LIMIT 1`).get(backupId) as
      VerificationRow | undefined;
  }

  lastVerification(backupId: number): VerificationRow | undefined {
    return this.db.prepare('SELECT * FROM verification WHERE backup_id = ? ORDER BY id DESC LIMIT 1').get(backupId) as
      VerificationRow | undefined;
  }

  // ---- restores ------------------------------------------------------------------------------

  /** The restore row of a job, created on its first run; a rerun gets the same row back. */
  beginRestore(jobId: string, backupId: number): RestoreRow {
    this.db
      .prepare(`INSERT OR IGNORE INTO restore_log (job_id, backup_id, started_at, status) VALUES (?, ?, ?, 'in_progress')`)
      .run(jobId, backupId, now());
    return this.db.prepare('SELECT * FROM restore_log WHERE job_id = ?').get(jobId) as RestoreRow;
  }

  /** Marks a restore failed unless it has finished meanwhile (see failBackup); false when it had. */
  failRestoreInProgress(id: number, message: string): boolean {
    return (
      this.db
        .prepare(`UPDATE restore_log SET status = 'failed', completed_at = ?, error_message = ? WHERE id = ? AND status = 'in_progress'`)
        .run(now(), message, id).changes > 0
    );
  }

  updateRestore(id: number, fields: Partial<Omit<RestoreRow, 'id' | 'job_id' | 'backup_id' | 'started_at'>>): RestoreRow {
    const keys = Object.keys(fields) as (keyof typeof fields)[];
    if (keys.length) {
      this.db.prepare(`UPDATE restore_log SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
    }
    return this.db.prepare('SELECT * FROM restore_log WHERE id = ?').get(id) as RestoreRow;
  }

  getRestoreByJob(jobId: string): RestoreRow | undefined {
    return this.db.prepare('SELECT * FROM restore_log WHERE job_id = ?').get(jobId) as RestoreRow | undefined;
  }

  getRestore(id: number): RestoreRow | undefined {
    return this.db.prepare('SELECT * FROM restore_log WHERE id = ?').get(id) as RestoreRow | undefined;
  }

  // ---- leases: backups that a running job reads, which retention must keep -------------------

  lease(backupId: number, holder: string, ttlMs: number): void {
    this.db
      .prepare('INSERT OR REPLACE INTO backup_lease (backup_id, holder, expires_at) VALUES (?, ?, ?)')
      .run(backupId, holder, Date.now() + ttlMs);
  }

  unlease(backupId: number, holder: string): void {
    this.db.prepare('DELETE FROM backup_lease WHERE backup_id = ? AND holder = ?').run(backupId, holder);
  }

  leasedBackupIds(): Set<number> {
    const rows = this.db.prepare('SELECT DISTINCT backup_id FROM backup_lease WHERE expires_at > ?').all(Date.now()) as {
      backup_id: number;
    }[];
    return new Set(rows.map((r) => r.backup_id));
  }

  // ---- settings ------------------------------------------------------------------------------

  getSetting<T>(key: string): T | undefined {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  setSetting(key: string, value: unknown): void {
    this.db
      .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, JSON.stringify(value));
  }

  // ---- fencing -------------------------------------------------------------------------------

  /** A new fencing value: every grant of the database lock takes one, each larger than the last. */
  nextFence(): number {
    return (this.db.prepare('UPDATE lock_fence SET value = value + 1 WHERE id = 1 RETURNING value').get() as { value: number }).value;
  }

  currentFence(): number {
    return (this.db.prepare('SELECT value FROM lock_fence WHERE id = 1').get() as { value: number }).value;
  }

  // ---- history -------------------------------------------------------------------------------

  /**
   * Deletes history older than `before` so the catalog does not grow for ever: failed backup rows,
   * verifications and finished restores. Kept whatever their age: the newest backup row (an old
   * failure may be the last word on backups), the last `keep` verifications of each backup and
   * its last one of each mode (retention trusts a backup by its last full verification), and the
   * last `keep` restores. Dates are compared with julianday() so rows in SQLite's own
   * `YYYY-MM-DD HH:MM:SS` format count too; a date it cannot read keeps its row.
   */
  pruneHistory(before: Date, keep = HISTORY_KEPT): { backups: number; verifications: number; restores: number } {
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

/** How many of the newest verifications per backup, and restores, history pruning always keeps. */
export const HISTORY_KEPT = 10;
