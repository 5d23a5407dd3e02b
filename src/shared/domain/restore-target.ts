/*
 * Where a restore goes, as one value from the API's body or the CLI's flag to the worker: read once
 * where it comes in (`parseRestoreTo`), carried as it is in the restore job's data, and decided on
 * (which backup, which generation and segments) by the operation that runs it.
 */
import { z } from 'zod';

/** A restore target that is not one backup: the newest backup that passes full verification. */
export const LATEST_VALID = 'latest-valid';
/** A restore target: the last commit the WAL archive holds. */
export const LATEST = 'latest';

/**
 * A moment as the catalog writes its times (`Date.prototype.toISOString`: UTC, milliseconds), so
 * it compares as a string with them; `parseRestoreTo` makes one from any ISO-8601 time with an offset.
 */
export const MOMENT = z.iso.datetime({ precision: 3 });

export type RestoreTarget =
  /** One backup, by id. */
  | { kind: 'backup'; backupId: number }
  /** The newest backup that passes full verification, chosen when the restore runs. */
  | { kind: typeof LATEST_VALID }
  /** The WAL archive's last commit. */
  | { kind: typeof LATEST }
  /** The WAL archive's last sync at or before `at` (as `MOMENT` writes it). */
  | { kind: 'moment'; at: string };

/** A restore from the WAL archive: to its newest moment, or to one moment of its window. */
export type ArchiveTarget = Extract<RestoreTarget, { kind: typeof LATEST | 'moment' }>;

/** An ISO-8601 date and time with its offset, as the API and the CLI take it (2026-02-30 is no date, not 2 March). */
const ISO_TIME = z.iso.datetime({ offset: true });

/** What `to` may be, said the same way by the API and the CLI. */
export const RESTORE_TO_FORMS = `"${LATEST_VALID}" (the newest backup that passes full verification), "${LATEST}" (the last archived commit) or an ISO-8601 time with its offset (2026-11-25T12:00:00Z)`;

/** `latest-valid`, `latest` or an ISO-8601 time with its offset as a target; undefined for anything else. */
export function parseRestoreTo(to: string): Exclude<RestoreTarget, { kind: 'backup' }> | undefined {
  if (to === LATEST_VALID) return { kind: LATEST_VALID };
  if (to === LATEST) return { kind: LATEST };
  if (!ISO_TIME.safeParse(to).success) return undefined;
  return { kind: 'moment', at: new Date(to).toISOString() };
}

/** Whether a target is one of the WAL archive's. */
export const isArchiveTarget = (target: RestoreTarget): target is ArchiveTarget => target.kind === LATEST || target.kind === 'moment';
