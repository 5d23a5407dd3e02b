import { existsSync } from 'node:fs';
import type { BackupContext } from '../backup/backup.js';
import type { BackupRow } from '../catalog/catalog.js';
import { permanentFailure } from '../domain/errors.js';
import { isPlain } from '../codec/codec.js';
import { encodingOf, primarySource } from '../verify/readable-copy.js';
import { restoreCheckMode, verifyAndRecord, type ReadableCopy } from '../verify/verify.js';

/** What a source made ready to copy in: a checked copy of the database, and whatever else it tells. */
export interface Prepared {
  copy: ReadableCopy;
}

/**
 * Where the database a restore copies in comes from, and how it is made ready. `prepare` is the
 * restore's first step: it runs beside the safety backup (which is published only once it has
 * passed) and hands back a copy it has fully checked. A refusal of the source (it fails its checks)
 * goes through `refuse`, which records the restore as failed; other errors are thrown as they are.
 */
export interface RestoreSource<P extends Prepared> {
  /**
   * `bytesFinal` is called, when it can be, with a file holding the very bytes `prepare` will hand
   * out if they pass, final while their checks still run: the restore's copy may begin from it
   * then, committed only once they pass (see `EarlyStart`).
   */
  prepare(backup: BackupRow, refuse: (err: Error) => Error, bytesFinal?: (path: string) => void): Promise<P>;
}

/**
 * A backup as it is: verified (checksum and integrity_check, or the checksum alone for bytes that
 * passed integrity_check before: see restoreCheckMode) and handed out as a readable copy.
 */
export function backupSource(ctx: BackupContext): RestoreSource<Prepared> {
  const { config, catalog, log } = ctx;
  return {
    async prepare(backup, refuse, bytesFinal) {
      const mode = restoreCheckMode(catalog, backup);
      // A plain backup in BACKUP_DIR is itself the copy handed out when it passes.
      const file = isPlain(encodingOf(backup)) ? localFile(config, backup) : undefined;
      if (file) bytesFinal?.(file);
      log.info(
        { backupId: backup.id, mode },
        mode === 'full' ? 'verifying the backup in full' : 'checksum only: these bytes passed integrity_check before',
      );
      const verification = await verifyAndRecord(config, catalog, backup, mode, true);
      if (!verification.valid || !verification.copy) {
        throw refuse(permanentFailure('backup_invalid', `backup ${backup.id} failed verification: ${verification.message}`));
      }
      return { copy: verification.copy };
    },
  };
}

/** The backup's file in BACKUP_DIR, when it is there. */
function localFile(config: BackupContext['config'], backup: BackupRow): string | undefined {
  const primary = primarySource(config, backup);
  const file = primary.store.localPath(primary.name);
  return file && existsSync(file) ? file : undefined;
}
