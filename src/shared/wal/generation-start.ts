import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import { GAP_PREFIX } from './gap.js';
import type { ReadMark } from './read-mark.js';
import { committedEnd, readHeader } from './wal-file.js';
import { startOf, type WalPosition } from './wal-format.js';

/**
 * How a new generation begins when an archiver starts without resuming one: why (the reason it
 * records, and whether that is a gap), and where in the WAL (its starting point, taken at a sync
 * point). See docs/wal-archiving.md, "What is checked when the archiver (re)starts".
 */

/** Whether a restore replaced the database since the open generation's last look (the CLI ran it with the service down). */
export function restoredSince(catalog: Catalog, open: WalGenerationRow | undefined): boolean {
  const restoredAt = catalog.lastRestoredAt();
  return Boolean(open && restoredAt && restoredAt > (catalog.wal.lastSegment(open.id)?.read_at ?? open.started_at));
}

/**
 * Why a generation begins at start-up, given the open generation that could not be resumed and
 * the last generation, and whether that follows a gap (an alert).
 */
export function whyBegin(open: WalGenerationRow | undefined, last: WalGenerationRow | undefined): { reason: string; isGap: boolean } {
  // A generation ended at a gap by an archiver that stopped before it began the next one (its
  // process died, or the database was briefly not in WAL mode): the next one says why.
  const gapBefore = !open && last?.end_reason?.startsWith(GAP_PREFIX) ? last.end_reason.slice(GAP_PREFIX.length) : undefined;
  return {
    reason: open
      ? 'the archiver was not running, and the WAL it finds cannot prove that nothing was written and checkpointed meanwhile'
      : (gapBefore ?? (last ? 'archiving started again after it was stopped' : 'archiving started')),
    isGap: Boolean(open) || Boolean(last),
  };
}

/**
 * A new generation's starting point: the WAL's committed end (undefined when the WAL is empty) and
 * the page size, taken at a sync point, so that nothing is between it and what the snapshot will
 * hold.
 */
export async function startingPoint(
  mark: ReadMark,
  walPath: string,
  signal: AbortSignal,
): Promise<{ start: WalPosition | undefined; pageSize: number }> {
  // Nothing to keep continuous: waiting for the write lock with a read mark held would only keep
  // an application's TRUNCATE or RESTART checkpoint (which holds that lock while it waits for
  // readers) waiting on the archiver.
  await mark.reader.endRead();
  let start: WalPosition | undefined;
  let pageSize = 0;
  await mark.atSyncPointSoon(async () => {
    const [row] = await mark.reader.all<{ page_size: number }>('PRAGMA page_size');
    pageSize = Number(row?.page_size);
    const header = await readHeader(walPath);
    start = header ? (await committedEnd(walPath, startOf(header))).end : undefined;
    await mark.files.noteWal();
    return true;
  }, signal);
  return { start, pageSize };
}
