import path from 'node:path';
import type Database from 'better-sqlite3';
import type { BackupRow, ImportedBackup } from '../catalog-schema.js';
import type { BackupStatus, BackupType, CompressionMode } from '../../domain/backup-types.js';
import { now } from './now.js';

/** A backup row is `backup_log` (the runbook's table, unchanged) joined with what this service adds. */
export const BACKUP_COLUMNS = `l.*, d.compression, d.encryption, d.page_size, d.user_version, d.database_size_bytes, d.job_id`;
export const BACKUP_FROM = `backup_log l LEFT JOIN backup_detail d ON d.backup_id = l.id`;

/** completeBackup found its row no longer `in_progress` (settled as failed meanwhile, or deleted). */
export class BackupNotInProgress extends Error {
  override name = 'BackupNotInProgress';
  constructor(id: number, status: string | undefined) {
    super(`backup ${id} is ${status ?? 'gone from the catalog'}, not in progress: it was settled while this run was writing it`);
  }
}

export interface CompletedBackup {
  filePath: string;
  fileSize: number;
  checksum: string;
  pageSize: number;
  userVersion: number;
  databaseSize: number;
  completedAt?: string;
}

export interface BackupPage {
  limit: number;
  offset?: number;
  /** A keyset cursor (an id), which stays fast on deep pages. */
  before?: number;
  status?: BackupStatus;
}

/** `backup_log` and `backup_detail`: one backup's row, from its start to its end. */
export class Backups {
  constructor(private readonly db: Database.Database) {}

  /**
   * Starts the row of a backup job. A job that runs again (a retry, or a rerun after its worker
   * died) takes over its own row instead of adding another.
   */
  begin(type: BackupType, filePath: string, jobId: string | null, compression: CompressionMode, encryption: string | null = null): number {
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

  complete(id: number, done: CompletedBackup): void {
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
   * run that took its row over (a rerun of its job), nor the reason the reaper recorded. False
   * when the row had been settled meanwhile.
   */
  fail(id: number, message: string): boolean {
    return (
      this.db
        .prepare(
          `UPDATE backup_log SET status = 'failed', completed_at = ?, error_message = ?, file_size_bytes = NULL
             WHERE id = ? AND status = 'in_progress'`,
        )
        .run(now(), message, id).changes > 0
    );
  }

  get(id: number): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.id = ?`).get(id) as BackupRow | undefined;
  }

  /** A backup by its file's path, or by its file name alone. */
  byFile(file: string): BackupRow | undefined {
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

  byJob(jobId: string): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE d.job_id = ?`).get(jobId) as BackupRow | undefined;
  }

  /** Whether a row other than `id` names this very file (then the file is that row's, whatever `id` was). */
  fileListedElsewhere(filePath: string, id: number): boolean {
    return Boolean(this.db.prepare('SELECT 1 FROM backup_log WHERE file_path = ? AND id != ? LIMIT 1').get(filePath, id));
  }

  /**
   * Puts back a completed backup known from its manifest, keeping its id, so ids that operators
   * and logs refer to stay valid after a rebuild. Refuses an id already taken, and a file that a
   * completed row already lists under another id (two rows for one file: retention of one would
   * delete the other's backup).
   */
  import(b: ImportedBackup): 'imported' | 'id_taken' | 'file_taken' {
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
  idCeiling(): number {
    const seq = this.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'backup_log'`).get() as { seq: number } | undefined;
    const max = this.db.prepare('SELECT max(id) AS m FROM backup_log').get() as { m: number | null };
    return Math.max(seq?.seq ?? 0, max.m ?? 0);
  }

  /** Newest first. */
  list({ limit, offset = 0, before, status }: BackupPage): BackupRow[] {
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

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM backup_log').get() as { n: number }).n;
  }

  /** The first completed backup that began after `iso` (a WAL generation's snapshot). */
  firstStartedAfter(iso: string): BackupRow | undefined {
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed' AND l.started_at > ? ORDER BY l.id LIMIT 1`)
      .get(iso) as BackupRow | undefined;
  }

  /** Newest first. */
  completed(): BackupRow[] {
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed' ORDER BY l.id DESC`)
      .all() as BackupRow[];
  }

  /** Oldest first. */
  inProgress(): BackupRow[] {
    return this.db
      .prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'in_progress' ORDER BY l.id`)
      .all() as BackupRow[];
  }

  lastSuccessful(): BackupRow | undefined {
    return this.db.prepare(`SELECT ${BACKUP_COLUMNS} FROM ${BACKUP_FROM} WHERE l.status = 'completed' ORDER BY l.id DESC LIMIT 1`).get() as
      BackupRow | undefined;
  }

  delete(id: number): void {
    this.db.prepare('DELETE FROM backup_log WHERE id = ?').run(id);
  }
}
