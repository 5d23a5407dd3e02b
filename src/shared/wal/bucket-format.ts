import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import type { BackupRow, WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { manifestAuthenticity, withMac } from '../catalog/manifest.js';
import type { Keyring } from '../codec/encryption.js';
import { COMPRESSION_MODES } from '../domain/backup-types.js';

/**
 * How the WAL archive describes itself in the bucket, so that a host with nothing but the
 * configuration can list, order, check and chain it (docs/wal-archiving.md, "The bucket alone"):
 *
 * - `generation-<id>.json`, one per generation: where its WAL began, its snapshot backup (id, file,
 *   SHA-256), when and why it ended; written again when any of that changes.
 * - `pack-<generation>-<first seq>-<last seq>`, one per mirror pass: a header naming each segment
 *   it holds (the catalog row: salts, offsets, running checksums, read time, SHA-256), then the
 *   segments' stored bytes back to back. One object per pass, so a busy database costs one PUT
 *   per interval.
 *
 * Every object names the archive it belongs to (a random id kept in the catalog) and, with an
 * encryption key, carries a MAC under it: a forged, altered or foreign object is refused by name.
 */

/** The catalog setting holding this archive's id. */
const ARCHIVE_ID = 'wal-archive-id';

/** The archive id this catalog has, if any (none until the mirror first writes, or a rebuild adopts one). */
export const storedArchiveId = (catalog: Catalog): string | undefined => catalog.getSetting<string>(ARCHIVE_ID);

/** This catalog's archive id, made on first use. */
export function archiveIdOf(catalog: Catalog): string {
  let id = catalog.getSetting<string>(ARCHIVE_ID);
  if (!id) {
    id = catalog.updateSetting<string>(ARCHIVE_ID, (stored) => (typeof stored === 'string' ? stored : randomUUID()));
  }
  return id;
}

/** Keeps the archive id found in the bucket, so that a rebuilt catalog goes on writing the same archive. */
export function adoptArchiveId(catalog: Catalog, id: string): void {
  catalog.updateSetting<string>(ARCHIVE_ID, (stored) => (typeof stored === 'string' ? stored : id));
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

export const generationManifestName = (id: number) => `generation-${pad(id, 8)}.json`;
export const packName = (generation: number, firstSeq: number, lastSeq: number) =>
  `pack-${pad(generation, 8)}-${pad(firstSeq, 10)}-${pad(lastSeq, 10)}`;

export function parseGenerationManifestName(name: string): number | undefined {
  const m = /^generation-(\d{8})\.json$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function parsePackName(name: string): { generation: number; firstSeq: number; lastSeq: number } | undefined {
  const m = /^pack-(\d{8})-(\d{10})-(\d{10})$/.exec(name);
  return m ? { generation: Number(m[1]), firstSeq: Number(m[2]), lastSeq: Number(m[3]) } : undefined;
}

const u32 = z.number().int().min(0).max(0xffffffff);
const iso = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const checksum = z.tuple([u32, u32]);
const mac = z.object({ algorithm: z.literal('hmac-sha256'), keyId: z.string(), value: sha256 }).optional();

export const GENERATION_FORMAT = 'workstation-backup-wal-generation';
export const PACK_FORMAT = 'workstation-backup-wal-pack';

const generationSchema = z.object({
  format: z.literal(GENERATION_FORMAT),
  version: z.literal(1),
  archive: z.string().min(1),
  id: z.number().int().positive(),
  startedAt: iso,
  reason: z.string(),
  pageSize: z.number().int().positive(),
  start: z.object({ salt1: u32, salt2: u32, offset: z.number().int().nonnegative(), checksum, bigEndian: z.boolean() }).nullable(),
  snapshot: z.object({ backupId: z.number().int().positive(), fileName: z.string(), sha256, at: iso }).nullable(),
  endedAt: iso.nullable(),
  endReason: z.string().nullable(),
  /** Once ended: a moment before which every commit of the generation is in its segments (its last sync point). */
  storedThrough: iso.nullable(),
  /** Once ended: how many segments it has, so that a bucket missing the last ones is not taken for whole. */
  segments: z.number().int().nonnegative().nullable(),
  mac,
});
export type GenerationManifest = z.infer<typeof generationSchema>;

const packSegmentSchema = z.object({
  seq: z.number().int().positive(),
  fileName: z.string().regex(/^wal-[\w.-]+$/),
  salt1: u32,
  salt2: u32,
  bigEndian: z.boolean(),
  pageSize: z.number().int().positive(),
  firstOffset: z.number().int().nonnegative(),
  lastOffset: z.number().int().positive(),
  startChecksum: checksum,
  endChecksum: checksum,
  frames: z.number().int().positive(),
  commits: z.number().int().nonnegative(),
  dbSizePages: z.number().int().nonnegative(),
  readAt: iso,
  sizeBytes: z.number().int().positive(),
  sha256,
  compression: z.enum(COMPRESSION_MODES),
  encryption: z.string().nullable(),
});

const packHeaderSchema = z.object({
  format: z.literal(PACK_FORMAT),
  version: z.literal(1),
  archive: z.string().min(1),
  generation: z.number().int().positive(),
  segments: z.array(packSegmentSchema).min(1),
  mac,
});
export type PackHeader = z.infer<typeof packHeaderSchema>;
export type PackSegment = z.infer<typeof packSegmentSchema>;

export function generationManifest(
  g: WalGenerationRow,
  snapshot: Pick<BackupRow, 'id' | 'file_path' | 'checksum'> | undefined,
  archive: string,
  ring: Keyring,
): GenerationManifest {
  const body: GenerationManifest = {
    format: GENERATION_FORMAT,
    version: 1,
    archive,
    id: g.id,
    startedAt: g.started_at,
    reason: g.reason,
    pageSize: g.page_size,
    start:
      g.start_offset === null
        ? null
        : {
            salt1: g.start_salt1!,
            salt2: g.start_salt2!,
            offset: g.start_offset,
            checksum: [g.start_checksum0!, g.start_checksum1!],
            bigEndian: g.big_endian === 1,
          },
    snapshot:
      snapshot && g.snapshot_at && snapshot.checksum
        ? { backupId: snapshot.id, fileName: snapshot.file_path.split('/').pop()!, sha256: snapshot.checksum, at: g.snapshot_at }
        : null,
    endedAt: g.ended_at,
    endReason: g.end_reason,
    storedThrough: g.ended_at ? g.last_read_at : null,
    segments: g.ended_at ? g.segments : null,
  };
  return ring.write ? withMac(ring.write, 'wal generation', body) : body;
}

export function packHeader(generation: number, segments: WalSegmentRow[], archive: string, ring: Keyring): PackHeader {
  const body: PackHeader = {
    format: PACK_FORMAT,
    version: 1,
    archive,
    generation,
    segments: segments.map((s) => ({
      seq: s.seq,
      fileName: s.file_name,
      salt1: s.salt1,
      salt2: s.salt2,
      bigEndian: s.big_endian === 1,
      pageSize: s.page_size,
      firstOffset: s.first_offset,
      lastOffset: s.last_offset,
      startChecksum: [s.start_checksum0, s.start_checksum1],
      endChecksum: [s.end_checksum0, s.end_checksum1],
      frames: s.frames,
      commits: s.commits,
      dbSizePages: s.db_size_pages,
      readAt: s.read_at,
      sizeBytes: s.size_bytes,
      sha256: s.checksum,
      compression: s.compression,
      encryption: s.encryption,
    })),
  };
  return ring.write ? withMac(ring.write, 'wal pack', body) : body;
}

/** A pack header's entry as the catalog's segment row (mirrored: it came from the bucket). */
export function segmentRowOf(generation: number, s: PackSegment): WalSegmentRow {
  return {
    generation_id: generation,
    seq: s.seq,
    file_name: s.fileName,
    salt1: s.salt1,
    salt2: s.salt2,
    big_endian: s.bigEndian ? 1 : 0,
    page_size: s.pageSize,
    first_offset: s.firstOffset,
    last_offset: s.lastOffset,
    start_checksum0: s.startChecksum[0],
    start_checksum1: s.startChecksum[1],
    end_checksum0: s.endChecksum[0],
    end_checksum1: s.endChecksum[1],
    frames: s.frames,
    commits: s.commits,
    db_size_pages: s.dbSizePages,
    read_at: s.readAt,
    size_bytes: s.sizeBytes,
    checksum: s.sha256,
    compression: s.compression,
    encryption: s.encryption,
    mirrored: 1,
  };
}

/**
 * Parses and authenticates an object's JSON. With a key configured, an object without a MAC, or
 * with one that fails, is refused (a MAC under a retired key that is still configured for reading
 * passes); without one, a MAC cannot be checked and is not required.
 */
function trusted<T>(
  schema: z.ZodType<T>,
  kind: string,
  text: string,
  ring: Keyring,
): { ok: true; value: T } | { ok: false; reason: string } {
  let value: T;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) return { ok: false, reason: `not a ${kind}: ${parsed.error.issues[0]?.message ?? 'malformed'}` };
    value = parsed.data;
  } catch {
    return { ok: false, reason: `not a ${kind}: not JSON` };
  }
  const keyId = (value as { mac?: { keyId: string } }).mac?.keyId;
  if (ring.write || (keyId !== undefined && ring.read.has(keyId))) {
    const auth = manifestAuthenticity(text, ring, kind);
    if (!auth.ok) return { ok: false, reason: auth.reason };
  }
  return { ok: true, value };
}

export const readGenerationManifest = (text: string, ring: Keyring) => trusted(generationSchema, 'wal generation', text, ring);
export const readPackHeader = (text: string, ring: Keyring) => trusted(packHeaderSchema, 'wal pack', text, ring);

/** A pack starts with these bytes, then the header's length (4 bytes, big-endian), then the header. */
export const PACK_MAGIC = Buffer.from('WSB-WAL-PACK-1\n');
/** Headers are a few hundred bytes a segment; a pack holds at most PACK_MAX_SEGMENTS. */
export const PACK_MAX_SEGMENTS = 20_000;
export const MAX_HEADER_BYTES = PACK_MAX_SEGMENTS * 1_024;

export function packPrefix(header: PackHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([PACK_MAGIC, length, json]);
}
