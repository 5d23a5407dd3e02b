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
  prepare(backup: BackupRow, refuse: (err: Error) => Error): Promise<P>;
  /**
   * A file holding the very bytes `prepare` will hand out when they pass, readable now and whose
   * checks end before a copy of it would: the copy into the live database may begin from it before
   * they end, committed only once they pass (see EarlyCopy). Undefined when there is none.
   */
  copyable?(backup: BackupRow): string | undefined;
}

/**
 * A backup as it is: verified (checksum and integrity_check, or the checksum alone for bytes that
 * passed integrity_check before: see restoreCheckMode) and handed out as a readable copy.
 */
export function backupSource(ctx: BackupContext): RestoreSource<Prepared> {
  const { config, catalog, log } = ctx;
  return {
    async prepare(backup, refuse) {
      const mode = restoreCheckMode(catalog, backup);
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
    copyable(backup) {
      // A checksum of bytes that passed integrity_check before is shorter than the copy; a full
      // integrity_check may be longer, and the application's writes would wait for it.
      if (restoreCheckMode(catalog, backup) !== 'checksum' || !isPlain(encodingOf(backup))) return undefined;
      const primary = primarySource(config, backup);
      const file = primary.store.localPath(primary.name);
      return file && existsSync(file) ? file : undefined;
    },
  };
}
