import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { WalPackRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import type { Config } from '../runtime/config.js';
import type { BackupStorage } from '../storage/storage.js';
import { openPack, type OpenPack } from './pack-reader.js';
import { intactLocalSegment } from './segment-store.js';

/** What `writeMerged` wrote, and how many parts it had to read from the bucket. */
export interface Merged {
  sha256: string;
  size: number;
  partsRead: number;
}

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * Writes a merged pack to `temp`: `prefix` (its header), then each segment's stored bytes in
 * order. A segment's bytes come from its file in BACKUP_DIR/wal when that is there and has the
 * SHA-256 of the catalog's row: the bytes its part holds, since the part's header was written
 * from those rows and its upload checked. Only for a segment whose file is gone or damaged is its
 * part read from the bucket (streamed, one segment in memory at a time): the part's header must
 * describe its segments as the catalog does, and the segment's bytes must have the row's SHA-256.
 * `rows` are the catalog's rows of the parts' segments, in order.
 */
export async function writeMerged(
  temp: string,
  prefix: Buffer,
  parts: WalPackRow[],
  rows: WalSegmentRow[],
  mirror: BackupStorage,
  config: Config,
  signal?: AbortSignal,
): Promise<Merged> {
  const file = await fs.open(temp, 'wx', 0o600);
  const hash = createHash('sha256');
  let size = 0;
  let partsRead = 0;
  const write = async (bytes: Buffer) => {
    hash.update(bytes);
    size += bytes.length;
    const { bytesWritten } = await file.write(bytes);
    if (bytesWritten !== bytes.length) throw new Error(`${temp}: short write`);
  };
  try {
    await write(prefix);
    let k = 0;
    for (const part of parts) {
      const of = rows.slice(k, k + part.last_seq - part.first_seq + 1);
      k += of.length;
      let open: OpenPack | undefined;
      try {
        for (const row of of) {
          signal?.throwIfAborted();
          const local = await intactLocalSegment(config, row);
          if (local) {
            await write(local);
            continue;
          }
          if (!open) {
            open = await openPart(mirror, part, of, config);
            partsRead++;
          }
          await write(await segmentFromPart(open, row));
        }
      } finally {
        open?.reader.close();
      }
    }
  } finally {
    await file.close();
  }
  return { sha256: hash.digest('hex'), size, partsRead };
}

/** Opens a part in the bucket; its header must describe each of its segments as the catalog's rows `of` do. */
async function openPart(mirror: BackupStorage, part: WalPackRow, of: WalSegmentRow[], config: Config): Promise<OpenPack> {
  const open = await openPack(mirror, part.name, config, {
    generation: part.generation_id,
    firstSeq: part.first_seq,
    lastSeq: part.last_seq,
  });
  const entries = open.header.segments;
  const differs = entries.findIndex((e, i) => {
    const row = of[i];
    return !row || e.seq !== row.seq || e.fileName !== row.file_name || e.sha256 !== row.checksum || e.sizeBytes !== row.size_bytes;
  });
  if (differs >= 0 || entries.length !== of.length) {
    open.reader.close();
    throw new Error(`${part.name} describes segment ${entries[differs]?.seq ?? part.last_seq} otherwise than the catalog does`);
  }
  return open;
}

/** The segment's bytes out of its open part (segments before it that are not needed are passed over), checked against its row. */
async function segmentFromPart(open: OpenPack, row: WalSegmentRow): Promise<Buffer> {
  const entries = open.header.segments;
  const at = entries.findIndex((e) => e.seq === row.seq);
  for (; open.next < at; open.next++) await open.reader.skip(entries[open.next]!.sizeBytes);
  const bytes = await open.reader.take(entries[at]!.sizeBytes);
  open.next = at + 1;
  if (sha256Of(bytes) !== row.checksum) throw new Error(`segment ${row.seq} in ${open.name} does not have the SHA-256 recorded for it`);
  return bytes;
}
