import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SCHEMA, type BackupRow, type CopyRow, type ImportedBackup, type RestoreRow } from './catalog-schema.js';
import type { Statistics, VerificationRow } from './catalog-schema.js';
import type { BackupType, CompressionMode } from '../domain/backup-types.js';
import { Backups, type BackupPage, type CompletedBackup } from './repositories/backups.js';
import { BackupOverview } from './repositories/backup-overview.js';
import { Copies } from './repositories/copies.js';
import { Fence } from './repositories/fence.js';
import { History, type DatabaseDamage, type Pruned } from './repositories/history.js';
import { WalArchive } from './repositories/wal.js';
import { WalBucket } from './repositories/wal-bucket.js';
import { RecoveryChecks } from './repositories/drills.js';
import { Leases } from './repositories/leases.js';
import { Restores, type RestoreUpdate } from './repositories/restores.js';
import { SettingsStore } from './repositories/settings-store.js';
import { Verifications, type VerificationMode } from './repositories/verifications.js';

export type * from './catalog-schema.js';
export { BackupNotInProgress } from './repositories/backups.js';
export { HISTORY_KEPT } from './repositories/history.js';

/**
 * The backup catalog: one SQLite file in BACKUP_DIR, shared by the producer, every worker and the
 * CLI. WAL and a busy timeout let them all write to it without "database is locked" errors.
 * Its SQL lives in one repository per table group (./repositories); this class opens the file
 * and is the one door to them, so no SQL runs anywhere else.
 */
export class Catalog {
  readonly #db: Database.Database;
  readonly #backups: Backups;
  readonly #overview: BackupOverview;
  readonly #copies: Copies;
  readonly #verifications: Verifications;
  readonly #restores: Restores;
  readonly #leases: Leases;
  readonly #settings: SettingsStore;
  readonly #fence: Fence;
  readonly #history: History;
  /** The WAL archive's generations and segments (./repositories/wal.ts). */
  readonly wal: WalArchive;
  /** Which bucket objects hold the WAL archive, and generations imported from the bucket (./repositories/wal-bucket.ts). */
  readonly walBucket: WalBucket;
  /** The WAL archive's verifications and the restore drills (./repositories/drills.ts). */
  readonly drills: RecoveryChecks;

  constructor(
    readonly file: string,
    { busyTimeout = 10_000, readonly = false }: { busyTimeout?: number; readonly?: boolean } = {},
  ) {
    if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const db = new Database(file, { readonly, fileMustExist: readonly });
    this.#db = db;
    if (!readonly) fs.chmodSync(file, 0o600);
    db.pragma(`busy_timeout = ${busyTimeout}`);
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode never corrupts the catalog; a power cut may lose its last commits.
      // FULL made every commit wait for the disk on the worker's main thread, behind the flush
      // of a freshly written backup (up to ~450 ms measured), stalling BullMQ's lock renewal.
      // What a lost commit could leave is repaired: a published backup file has its manifest
      // (reindex), and an `in_progress` row is settled by the reaper.
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
    }
    this.#backups = new Backups(db);
    this.#overview = new BackupOverview(db);
    this.#copies = new Copies(db);
    this.#verifications = new Verifications(db);
    this.#restores = new Restores(db);
    this.#leases = new Leases(db);
    this.#settings = new SettingsStore(db);
    this.#fence = new Fence(db);
    this.#history = new History(db);
    this.wal = new WalArchive(db);
    this.walBucket = new WalBucket(db);
    this.drills = new RecoveryChecks(db);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /** Folds the WAL into the file and leaves WAL mode, so that the file alone is the whole catalog (to move it). */
  makeSelfContained(): void {
    this.#db.pragma('journal_mode = DELETE');
  }

  // ---- backups: ./repositories/backups.ts (one row), ./repositories/backup-overview.ts (all of them) --

  beginBackup(type: BackupType, filePath: string, jobId: string | null, compression: CompressionMode, encryption?: string | null): number {
    return this.#backups.begin(type, filePath, jobId, compression, encryption);
  }
  completeBackup(id: number, done: CompletedBackup): void {
    this.#backups.complete(id, done);
  }
  failBackup(id: number, message: string): boolean {
    return this.#backups.fail(id, message);
  }
  getBackup(id: number): BackupRow | undefined {
    return this.#backups.get(id);
  }
  getBackupByFile(file: string): BackupRow | undefined {
    return this.#backups.byFile(file);
  }
  getBackupByJob(jobId: string): BackupRow | undefined {
    return this.#backups.byJob(jobId);
  }
  fileListedElsewhere(filePath: string, id: number): boolean {
    return this.#backups.fileListedElsewhere(filePath, id);
  }
  importBackup(b: ImportedBackup): 'imported' | 'id_taken' | 'file_taken' {
    return this.#backups.import(b);
  }
  backupIdCeiling(): number {
    return this.#backups.idCeiling();
  }
  listBackups(page: BackupPage): BackupRow[] {
    return this.#backups.list(page);
  }
  countBackups(): number {
    return this.#backups.count();
  }
  completedBackups(): BackupRow[] {
    return this.#backups.completed();
  }
  firstBackupStartedAfter(iso: string): BackupRow | undefined {
    return this.#backups.firstStartedAfter(iso);
  }
  retentionView(group: 'regular' | 'safety', keep: number): ReturnType<BackupOverview['retentionView']> {
    return this.#overview.retentionView(group, keep);
  }
  inProgressBackups(): BackupRow[] {
    return this.#backups.inProgress();
  }
  lastSuccessfulBackup(): BackupRow | undefined {
    return this.#backups.lastSuccessful();
  }
  deleteBackup(id: number): void {
    this.#backups.delete(id);
  }
  statistics(): Statistics {
    return this.#overview.statistics();
  }
  backupCounts(): ReturnType<BackupOverview['counts']> {
    return this.#overview.counts();
  }

  // ---- copies of a backup elsewhere (the mirror): ./repositories/copies.ts -----------------------

  recordCopy(backupId: number, location: string, ok: boolean, error: string | null = null): void {
    this.#copies.record(backupId, location, ok, error);
  }
  copies(location: string): CopyRow[] {
    return this.#copies.at(location);
  }
  backupsWithoutCopy(location: string): BackupRow[] {
    return this.#copies.missingAt(location);
  }

  // ---- verifications: ./repositories/verifications.ts --------------------------------------------

  recordVerification(backupId: number, mode: VerificationMode, valid: boolean, message: string, checks: unknown): VerificationRow {
    return this.#verifications.record(backupId, mode, valid, message, checks);
  }
  lastFullVerification(backupId: number): VerificationRow | undefined {
    return this.#verifications.lastFull(backupId);
  }
  lastVerification(backupId: number): VerificationRow | undefined {
    return this.#verifications.last(backupId);
  }

  // ---- restores: ./repositories/restores.ts ------------------------------------------------------

  beginRestore(jobId: string, backupId: number): RestoreRow {
    return this.#restores.begin(jobId, backupId);
  }
  failRestoreInProgress(id: number, message: string): boolean {
    return this.#restores.failInProgress(id, message);
  }
  updateRestore(id: number, fields: RestoreUpdate): RestoreRow {
    return this.#restores.update(id, fields);
  }
  getRestoreByJob(jobId: string): RestoreRow | undefined {
    return this.#restores.byJob(jobId);
  }
  getRestore(id: number): RestoreRow | undefined {
    return this.#restores.get(id);
  }
  lastRestoredAt(): string | null {
    return this.#restores.lastRestoredAt();
  }
  inProgressRestores(): RestoreRow[] {
    return this.#restores.inProgress();
  }

  // ---- leases: ./repositories/leases.ts ----------------------------------------------------------

  lease(backupId: number, holder: string, ttlMs: number): void {
    this.#leases.take(backupId, holder, ttlMs);
  }
  unlease(backupId: number, holder: string): void {
    this.#leases.release(backupId, holder);
  }
  leasedBackupIds(): Set<number> {
    return this.#leases.leasedIds();
  }

  // ---- settings: ./repositories/settings-store.ts ------------------------------------------------

  getSetting<T>(key: string): T | undefined {
    return this.#settings.get<T>(key);
  }
  setSetting(key: string, value: unknown): void {
    this.#settings.set(key, value);
  }
  updateSetting<T>(key: string, next: (stored: unknown) => T): T {
    return this.#settings.update(key, next);
  }

  // ---- fencing: ./repositories/fence.ts ----------------------------------------------------------

  nextFence(): number {
    return this.#fence.next();
  }
  currentFence(): number {
    return this.#fence.current();
  }

  // ---- history: ./repositories/history.ts --------------------------------------------------------

  databaseDamage(): DatabaseDamage | undefined {
    return this.#history.databaseDamage();
  }
  pruneHistory(before: Date, keep?: number): Pruned {
    return this.#history.prune(before, keep);
  }
}
