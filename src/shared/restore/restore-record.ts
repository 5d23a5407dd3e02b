import path from 'node:path';
import type { Catalog, RestoreRow } from '../catalog/catalog.js';

const now = () => new Date().toISOString();

/** Starts the restore row's note saying where the damaged database it replaced was kept. */
const DAMAGED_NOTE = 'the damaged database was';

/**
 * A restore's row in the catalog (`restore_log`), and every change of its state: each step of the
 * restore changes it here, through one method named for what happened.
 */
export class RestoreRecord {
  private constructor(
    private readonly catalog: Catalog,
    readonly id: number,
  ) {}

  /** The row of the job, made on its first run; a rerun of the same job gets it back as it left it. */
  static begin(catalog: Catalog, jobId: string, backupId: number): { record: RestoreRecord; row: RestoreRow } {
    const row = catalog.beginRestore(jobId, backupId);
    return { record: new RestoreRecord(catalog, row.id), row };
  }

  get row(): RestoreRow {
    return this.catalog.getRestore(this.id)!;
  }

  /** Under way: an earlier run's error goes. */
  started(): void {
    this.catalog.updateRestore(this.id, { status: 'in_progress', error_message: null });
  }

  /** The safety backup that holds the live database as it was. */
  safetyTaken(backupId: number): void {
    this.catalog.updateRestore(this.id, { safety_backup_id: backupId });
  }

  /** Where a damaged live database was kept instead of a safety backup: `moved to …` or `copied to …`. */
  damagedKept(where: string): void {
    this.catalog.updateRestore(this.id, { error_message: `${DAMAGED_NOTE} ${where}` });
  }

  /**
   * The copy into the live database has written: from here it is never made again (a rerun only
   * checks and records). Safe to call twice: the first time stays.
   */
  copied(): void {
    if (!this.row.restored_at) this.catalog.updateRestore(this.id, { restored_at: now() });
  }

  /** Failed, with where the safety backup is when one was taken; the error thrown says so too. */
  failed(err: Error): Error {
    const note = this.safetyNote();
    if (note && !err.message.includes(note)) err.message += note;
    this.catalog.updateRestore(this.id, { status: 'failed', completed_at: now(), error_message: err.message });
    return err;
  }

  /** A busy live database refused the copy before it wrote: failed, the live database unchanged, no end time. */
  refusedBusy(err: Error): Error {
    const failure = Object.assign(err, { message: err.message + this.safetyNote() });
    this.catalog.updateRestore(this.id, { status: 'failed', error_message: failure.message });
    return failure;
  }

  /**
   * Stopped (a cancel, a lost lock) with `message`, and the note and safety backup added to it; only
   * while in progress, since a rerun of the job on another worker may own the row by now.
   */
  stopped(message: string): string {
    const note = this.row.error_message;
    const full = message + (note ? `; ${note}` : '') + this.safetyNote();
    this.catalog.failRestoreInProgress(this.id, full);
    return full;
  }

  /** Completed: a note left by this run (where a damaged database was kept) stays. */
  completed(): RestoreRow {
    const note = this.row.error_message;
    return this.catalog.updateRestore(this.id, {
      status: 'completed',
      completed_at: now(),
      error_message: note?.startsWith(DAMAGED_NOTE) ? note : null,
    });
  }

  /** The safety backup was put back after the restore failed for `reason`. */
  rolledBack(reason: string, safetyBackupId: number): void {
    this.catalog.updateRestore(this.id, {
      status: 'rolled_back',
      completed_at: now(),
      error_message: `${reason}; rolled back to safety backup ${safetyBackupId}`,
    });
  }

  /** The note saying where a damaged database was kept, when this run kept one. */
  damagedNote(): string | undefined {
    const note = this.row.error_message;
    return note?.startsWith(DAMAGED_NOTE) ? note : undefined;
  }

  /**
   * Where the way back is, for the reason of a restore that failed after its safety backup: the
   * operator restores that backup to return to the database as it was before this restore.
   */
  safetyNote(): string {
    const id = this.row.safety_backup_id;
    const safety = id ? this.catalog.getBackup(id) : undefined;
    return safety
      ? `; safety backup ${safety.id} (${path.basename(safety.file_path)}) holds the database as it was before this restore`
      : '';
  }
}
