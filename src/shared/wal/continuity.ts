import fs from 'node:fs/promises';
import type { WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { Gap } from './gap.js';
import { fileSize, readHeader } from './wal-file.js';
import { frameSize, readAt, restartSalt, startOf, WAL_HEADER_SIZE, type WalHeader, type WalPosition } from './wal-format.js';

/**
 * Positive proof that the `-wal` file continues what the archive stored (docs/wal-archiving.md,
 * "The promise, and its proof"): at each look, where reading goes on or the `Gap` that ends the
 * generation; when an archiver (re)starts, whether the WAL still holds exactly what was stored.
 */

/** Where the WAL continues after a stored segment. */
export function positionAfter(segment: WalSegmentRow): WalPosition {
  return {
    salt1: segment.salt1,
    salt2: segment.salt2,
    pageSize: segment.page_size,
    bigEndian: segment.big_endian === 1,
    offset: segment.last_offset,
    checksum: [segment.end_checksum0, segment.end_checksum1],
  };
}

/**
 * Where reading goes on at this look, given the header just read (null: empty or missing), the
 * archive's position, whether the read mark has been held since a sync point, and the generation.
 * Undefined when the WAL is empty and nothing is after the position. Throws `Gap` when the WAL
 * started afresh and that cannot be proven harmless, or when the page size changed.
 */
export async function continuedFrom(
  walPath: string,
  header: WalHeader | null,
  at: { pos: WalPosition | undefined; safe: boolean; generation: WalGenerationRow },
): Promise<WalPosition | undefined> {
  const { pos, safe, generation } = at;
  if (!header) {
    // Empty: nothing written since the WAL was last emptied. With frames after the position
    // still unread (or unknown), only a TRUNCATE checkpoint or a deleted file empties it.
    if (pos) throw new Gap('the -wal file was emptied (a TRUNCATE checkpoint, or deleted) after the last frames the archive holds');
    return undefined;
  }
  if (header.pageSize !== generation.page_size) throw new Gap(`the page size changed from ${generation.page_size} to ${header.pageSize}`);
  if (!pos || header.salt1 !== pos.salt1 || header.salt2 !== pos.salt2) {
    // The WAL started afresh. Harmless when the read mark has been held since a sync point, and
    // only once: each restart adds one to salt-1, so other salts mean another file or more restarts.
    if (!safe) throw new Gap('the WAL was reset by another connection while the archiver had let go of it');
    if (pos && header.salt1 !== restartSalt(pos.salt1)) {
      throw new Gap(
        `the WAL's salts do not follow a single restart (salt-1 ${pos.salt1} then ${header.salt1}): replaced, or restarted unseen`,
      );
    }
    return startOf(header);
  } else if ((await fileSize(walPath)) < pos.offset) {
    throw new Gap(`the -wal file shrank below the archive's position ${pos.offset}`);
  }
  return pos;
}

/**
 * Where an open generation's archive ends in the WAL: after its last stored segment, or at its
 * start when it stored none (undefined when it began on an empty WAL).
 */
export function storedEnd(generation: WalGenerationRow, last: WalSegmentRow | undefined): WalPosition | undefined {
  return last
    ? positionAfter(last)
    : generation.start_offset !== null
      ? {
          salt1: generation.start_salt1!,
          salt2: generation.start_salt2!,
          pageSize: generation.page_size,
          bigEndian: generation.big_endian === 1,
          offset: generation.start_offset,
          checksum: [generation.start_checksum0!, generation.start_checksum1!],
        }
      : undefined;
}

/**
 * Whether the `-wal` file still holds what was stored, up to `expected`: the same salts, at least
 * as long, and the frame before the position ending on the stored checksum. Run at a sync point.
 */
export async function walHoldsStored(walPath: string, expected: WalPosition | undefined): Promise<boolean> {
  // Only positive proof continues a generation: a WAL that began empty, is gone, or has other
  // salts may have been written, checkpointed and emptied while no archiver looked.
  if (!expected) return false;
  const header = await readHeader(walPath);
  if (!header || header.salt1 !== expected.salt1 || header.salt2 !== expected.salt2) return false;
  if ((await fileSize(walPath)) < expected.offset) return false;
  if (expected.offset === WAL_HEADER_SIZE) return true;
  // The frame before the position must end on the stored checksum: then the WAL still holds what was stored.
  const size = frameSize(expected.pageSize);
  const handle = await fs.open(walPath, 'r');
  try {
    const frame = await readAt(handle, expected.offset - size, 24);
    return (
      frame.length === 24 &&
      frame.readUInt32BE(8) === expected.salt1 &&
      frame.readUInt32BE(16) === expected.checksum[0] &&
      frame.readUInt32BE(20) === expected.checksum[1]
    );
  } finally {
    await handle.close();
  }
}
