import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Catalog } from '../catalog/catalog.js';
import type { WalSegmentRow } from '../catalog/catalog-schema.js';
import { keyringOf, type Keyring } from '../codec/encryption.js';
import type { Config } from '../runtime/config.js';
import { ensurePrivateDir, removeQuietly, tempPath } from '../runtime/files.js';
import { StorageError, type BackupStorage, type CallOptions } from '../storage/storage.js';
import {
  archiveIdOf,
  generationManifest,
  generationManifestName,
  PACK_MAX_SEGMENTS,
  packHeader,
  packName,
  packPrefix,
  readGenerationManifest,
} from './bucket-format.js';
import { intactLocalSegment, segmentStoresOf } from './segment-store.js';

/** What one pass of `sendPending` did. */
export interface SendPass {
  /** Segments sent. */
  copied: number;
  /** Objects written: packs and generation descriptions. */
  objects: number;
  /** Why the pass stopped before the end: the bucket failed (it is down, hangs or refuses). */
  error?: string;
  /** Segments whose own file is missing or damaged in `BACKUP_DIR/wal`: they cannot be sent (verification names them). */
  missing: string[];
  /** Whether segments may be left to send (a batch's worth was taken, or the pass stopped early). */
  more: boolean;
}

/**
 * A pack holds about this many bytes of segments at most (a backlog goes in several): one PUT each,
 * and what a pass holds in memory stays within twice this.
 */
const PACK_MAX_BYTES = 7 * 1024 * 1024;

/**
 * Sends the bucket what it lacks of the WAL archive, as the catalog tells it (nothing is listed):
 * first the description of every generation whose description changed (begun, snapshot taken,
 * ended), then the segments it lacks, oldest first, as one pack per generation's run of
 * consecutive segments. In steady state that is one PUT per pass. Throws when the bucket fails;
 * what was sent before stays recorded.
 */
export async function sendPending(config: Config, catalog: Catalog, signal?: AbortSignal): Promise<SendPass> {
  const { mirror } = segmentStoresOf(config);
  const pass: SendPass = { copied: 0, objects: 0, missing: [], more: false };
  if (!mirror) return pass;
  const ring = keyringOf(config);
  const archive = archiveIdOf(catalog);
  pass.objects += await publishGenerations(catalog, mirror, archive, ring, { signal });
  const segments = catalog.wal.unmirrored(PACK_MAX_SEGMENTS);
  let run: { rows: WalSegmentRow[]; bytes: Buffer[]; size: number } = { rows: [], bytes: [], size: 0 };
  const flush = async () => {
    if (!run.rows.length) return;
    await sendPack(config, catalog, mirror, archive, ring, run.rows, run.bytes, signal);
    pass.copied += run.rows.length;
    pass.objects++;
    run = { rows: [], bytes: [], size: 0 };
  };
  for (const segment of segments) {
    if (signal?.aborted) return { ...pass, more: true };
    const last = run.rows.at(-1);
    const stored = await intactLocalSegment(config, segment);
    const full = run.size + (stored?.length ?? 0) > PACK_MAX_BYTES;
    if (last && (segment.generation_id !== last.generation_id || segment.seq !== last.seq + 1 || full)) await flush();
    if (!stored) {
      pass.missing.push(segment.file_name);
      await flush();
      continue;
    }
    run.rows.push(segment);
    run.bytes.push(stored);
    run.size += stored.length;
  }
  await flush();
  return { ...pass, more: segments.length === PACK_MAX_SEGMENTS };
}

async function sendPack(
  config: Config,
  catalog: Catalog,
  mirror: BackupStorage,
  archive: string,
  ring: Keyring,
  rows: WalSegmentRow[],
  bytes: Buffer[],
  signal?: AbortSignal,
): Promise<void> {
  const { primary } = segmentStoresOf(config);
  const generation = rows[0]!.generation_id;
  const name = packName(generation, rows[0]!.seq, rows.at(-1)!.seq);
  const body = Buffer.concat([packPrefix(packHeader(generation, rows, archive, ring)), ...bytes]);
  await ensurePrivateDir(primary.dir);
  const temp = tempPath(primary.dir, 'put');
  try {
    await fs.writeFile(temp, body, { mode: 0o600 });
    const sha256 = createHash('sha256').update(body).digest('hex');
    await (mirror.putNew ?? mirror.put).call(mirror, temp, name, sha256, { signal });
  } finally {
    await removeQuietly(temp);
  }
  catalog.walBucket.recordPack({
    name,
    generation_id: generation,
    first_seq: rows[0]!.seq,
    last_seq: rows.at(-1)!.seq,
    size_bytes: body.length,
  });
}

/**
 * Writes the description of each generation whose description changed since it was last written.
 * A generation's running fields (its last read time) are left out until it ends, so a running one
 * is written when it begins, when its snapshot is taken, and when it ends. The first time, an
 * object already there under its name is read: one of another archive is never overwritten.
 * Returns the number written.
 */
export async function publishGenerations(
  catalog: Catalog,
  mirror: BackupStorage,
  archive: string,
  ring: Keyring,
  opts: CallOptions,
): Promise<number> {
  let written = 0;
  for (const g of catalog.wal.generations()) {
    const snapshot = g.snapshot_backup_id === null ? undefined : catalog.getBackup(g.snapshot_backup_id);
    const manifest = generationManifest(g, snapshot, archive, ring);
    const text = JSON.stringify(manifest, null, 2);
    const digest = createHash('sha256').update(text).digest('hex');
    const published = catalog.walBucket.publishedDigest(g.id);
    if (published === digest) continue;
    const name = generationManifestName(g.id);
    if (published === undefined) {
      const existing = await mirror.getText(name, opts);
      const other = existing === undefined ? undefined : readGenerationManifest(existing, ring);
      if (existing !== undefined && (!other?.ok || other.value.archive !== archive)) {
        throw new StorageError(
          `${mirror.location}/${name} exists and is not this archive's (${other?.ok ? `archive ${other.value.archive}` : other?.reason}): ` +
            'not overwriting it; point BACKUP_MIRROR_URL at a prefix of its own, or restore from that archive first',
        );
      }
      // The same archive, but another generation under this id: a second host writing it (a catalog
      // rebuilt from this bucket while the first host still runs).
      if (other?.ok && other.value.startedAt !== g.started_at) {
        throw new StorageError(
          `${mirror.location}/${name} describes another generation ${g.id} of this archive (begun ${other.value.startedAt}): ` +
            'another host is writing this archive; not overwriting it; give one of them a prefix of its own',
        );
      }
    }
    await mirror.putText(name, text, opts);
    catalog.walBucket.setPublished(g.id, digest);
    written++;
  }
  return written;
}

/**
 * Deletes what retention removed: the segment files in BACKUP_DIR/wal, and in the bucket the packs
 * and descriptions of the generations deleted. Failures are left for the next pass.
 */
export async function removeGenerations(
  config: Config,
  catalog: Catalog,
  pruned: { generations: number[]; files: string[] },
): Promise<void> {
  const { primary, mirror } = segmentStoresOf(config);
  const packed = new Set(pruned.generations.filter((id) => catalog.walBucket.packs(id).length > 0));
  for (const name of pruned.files) {
    await primary.remove(name).catch(() => undefined);
    // A generation archived before packs had one object per segment.
    const generation = Number(/^wal-(\d+)-/.exec(name)?.[1]);
    if (!packed.has(generation)) await mirror?.remove(name).catch(() => undefined);
  }
  if (mirror) {
    for (const id of pruned.generations) {
      for (const pack of catalog.walBucket.packs(id)) await mirror.remove(pack.name).catch(() => undefined);
      await mirror.remove(generationManifestName(id)).catch(() => undefined);
    }
  }
  catalog.walBucket.forget(pruned.generations);
}
