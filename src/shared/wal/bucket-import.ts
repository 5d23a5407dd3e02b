import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow, WalPackRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { keyringOf, type Keyring } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import type { BackupStorage } from '../storage/storage.js';
import { catalogChainProblem } from './archive-verify.js';
import {
  adoptArchiveId,
  generationManifestName,
  parseGenerationManifestName,
  parsePackName,
  readGenerationManifest,
  segmentRowOf,
  storedArchiveId,
  type GenerationManifest,
  type PackHeader,
} from './bucket-format.js';
import { readPackHead } from './pack-reader.js';
import { segmentStoresOf } from './segment-store.js';

/** What `importWalArchive` put back from the bucket, and what it refused. */
export interface WalImportReport {
  /** Generations imported, with their ids. */
  generations: number[];
  /** Generations the catalog had already. */
  known: number[];
  segments: number;
  /** Objects not believed, by name, with the reason: forged, altered, another archive's, unreadable. */
  refused: { name: string; reason: string }[];
  /** Generations imported only up to a segment that is missing or does not chain: restores reach no further. */
  broken: { generation: number; reachedSeq: number; reason: string }[];
  /** Why the bucket's WAL folder could not be listed; nothing was imported then. */
  error: string | null;
}

/** Pack headers read at once. */
const READS_IN_FLIGHT = 16;

/**
 * Rebuilds the catalog's WAL archive tables from the bucket alone: every generation description
 * (authenticated with a key configured; of this archive), and the header of every pack, chained
 * segment by segment from where the generation began, as the archiver recorded them. A generation
 * is imported up to its first missing, refused or unchained segment (`broken` says where). The
 * segments' bytes are not read here: every restore checks them (SHA-256, decryption, the WAL
 * checksum chain). Generations the catalog has are left alone. The snapshot of a generation is
 * kept only when the catalog lists that backup with the same file and SHA-256 (import the backup
 * manifests first). A generation that had not ended is imported as ended: its archiver is not
 * this catalog's.
 */
export async function importWalArchive(config: Config, catalog: Catalog): Promise<WalImportReport> {
  const report: WalImportReport = { generations: [], known: [], segments: 0, refused: [], broken: [], error: null };
  const { mirror } = segmentStoresOf(config);
  if (!mirror) return report;
  let names: string[];
  try {
    names = await mirror.list();
  } catch (err) {
    return { ...report, error: `${mirror.location}: ${messageOf(err)}` };
  }
  const ring = keyringOf(config);
  const manifests: GenerationManifest[] = [];
  for (const name of names) {
    const id = parseGenerationManifestName(name);
    if (id === undefined) continue;
    const read = await readDescription(mirror, name, ring);
    if (!read.ok) report.refused.push({ name, reason: read.reason });
    else if (read.value.id !== id) report.refused.push({ name, reason: `it describes generation ${read.value.id}: renamed or forged` });
    else manifests.push(read.value);
  }
  manifests.sort((a, b) => a.id - b.id);
  // This catalog's archive; on a new host, the archive of the newest generation whose snapshot is a
  // backup of this bucket (listed in the catalog with that file and SHA-256): the host that was lost.
  const anchored = manifests.filter((m) => m.snapshot && snapshotOf(catalog, m) !== undefined);
  const archive = storedArchiveId(catalog) ?? (anchored.at(-1) ?? manifests.at(-1))?.archive;
  if (!archive) return report;
  adoptArchiveId(catalog, archive);
  const packsOf = new Map<number, string[]>();
  for (const name of names) {
    const p = parsePackName(name);
    if (p) packsOf.set(p.generation, [...(packsOf.get(p.generation) ?? []), name]);
  }
  for (const m of manifests) {
    if (m.archive !== archive) {
      report.refused.push({ name: generationManifestName(m.id), reason: `it belongs to another archive (${m.archive}, not ${archive})` });
      continue;
    }
    if (catalog.wal.generation(m.id)) {
      report.known.push(m.id);
      continue;
    }
    const headers = await readHeaders(mirror, config, packsOf.get(m.id) ?? [], report);
    const imported = importGeneration(catalog, m, archive, headers, report);
    if (imported === null) report.known.push(m.id);
    else {
      report.generations.push(m.id);
      report.segments += imported;
    }
  }
  return report;
}

/** A description is a few hundred bytes: a far larger object is not one, and is not read into memory. */
const MAX_DESCRIPTION_BYTES = 64 * 1024;

async function readDescription(mirror: BackupStorage, name: string, ring: Keyring): Promise<ReturnType<typeof readGenerationManifest>> {
  try {
    const size = (await mirror.stat(name))?.size;
    if (size === undefined) return { ok: false, reason: 'gone' };
    if (size > MAX_DESCRIPTION_BYTES) return { ok: false, reason: `${size} bytes: too large for a generation description` };
    const text = await mirror.getText(name);
    return text === undefined ? { ok: false, reason: 'gone' } : readGenerationManifest(text, ring);
  } catch (err) {
    return { ok: false, reason: `unreadable: ${messageOf(err)}` };
  }
}

/** The generation's snapshot when the catalog lists that backup, completed, with the same file and SHA-256. */
function snapshotOf(catalog: Catalog, m: GenerationManifest) {
  if (!m.snapshot) return undefined;
  const backup = catalog.getBackup(m.snapshot.backupId);
  const same =
    backup?.status === 'completed' && backup.checksum === m.snapshot.sha256 && path.basename(backup.file_path) === m.snapshot.fileName;
  return same ? backup : undefined;
}

async function readHeaders(
  mirror: BackupStorage,
  config: Config,
  names: string[],
  report: WalImportReport,
): Promise<{ name: string; header: PackHeader; size: number }[]> {
  const out: { name: string; header: PackHeader; size: number }[] = [];
  const queue = [...names].sort();
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      try {
        const header = await readPackHead(mirror, name, config, parsePackName(name));
        const size = header.segments.reduce((n, s) => n + s.sizeBytes, 0);
        out.push({ name, header, size });
      } catch (err) {
        report.refused.push({ name, reason: messageOf(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: READS_IN_FLIGHT }, worker));
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Imports one generation; returns its number of segments, or null when the catalog had it already. */
function importGeneration(
  catalog: Catalog,
  m: GenerationManifest,
  archive: string,
  headers: { name: string; header: PackHeader; size: number }[],
  report: WalImportReport,
): number | null {
  const generation: WalGenerationRow = {
    id: m.id,
    started_at: m.startedAt,
    reason: m.reason,
    page_size: m.pageSize,
    start_salt1: m.start?.salt1 ?? null,
    start_salt2: m.start?.salt2 ?? null,
    start_offset: m.start?.offset ?? null,
    start_checksum0: m.start?.checksum[0] ?? null,
    start_checksum1: m.start?.checksum[1] ?? null,
    big_endian: m.start ? (m.start.bigEndian ? 1 : 0) : null,
    snapshot_backup_id: null,
    snapshot_at: null,
    ended_at: m.endedAt ?? new Date().toISOString(),
    end_reason: m.endReason ?? 'it had not ended when the catalog was rebuilt from the bucket',
    segments: 0,
    bytes: 0,
    first_read_at: null,
    last_read_at: null,
  };
  if (m.snapshot) {
    const backup = catalog.getBackup(m.snapshot.backupId);
    if (
      backup?.status === 'completed' &&
      backup.checksum === m.snapshot.sha256 &&
      path.basename(backup.file_path) === m.snapshot.fileName
    ) {
      generation.snapshot_backup_id = backup.id;
      generation.snapshot_at = m.snapshot.at;
    } else {
      report.broken.push({
        generation: m.id,
        reachedSeq: 0,
        reason: `its snapshot, backup ${m.snapshot.backupId} (${m.snapshot.fileName}), is not in the catalog with that SHA-256`,
      });
    }
  }
  // Segment by sequence number; a pass sent twice (a crash between the PUT and the catalog) holds the same segments.
  const bySeq = new Map<number, { row: WalSegmentRow; pack: string }>();
  const used = new Map<string, Omit<WalPackRow, 'created_at'>>();
  for (const { name, header, size } of headers) {
    if (header.archive !== archive) {
      report.refused.push({ name, reason: `it belongs to another archive (${header.archive}, not ${archive})` });
      continue;
    }
    for (const s of header.segments) {
      const had = bySeq.get(s.seq);
      if (had && had.row.checksum !== s.sha256) {
        report.refused.push({ name, reason: `its segment ${s.seq} differs from the one in ${had.pack}` });
        continue;
      }
      if (!had) bySeq.set(s.seq, { row: segmentRowOf(m.id, s), pack: name });
    }
    used.set(name, {
      name,
      generation_id: m.id,
      first_seq: header.segments[0]!.seq,
      last_seq: header.segments.at(-1)!.seq,
      size_bytes: size,
    });
  }
  const segments: WalSegmentRow[] = [];
  const last = Math.max(0, ...bySeq.keys());
  for (let seq = 1; seq <= last; seq++) {
    const found = bySeq.get(seq);
    const problem = found
      ? catalogChainProblem(generation, segments.at(-1), found.row, seq)
      : `segment ${seq} is in no pack the bucket holds`;
    if (problem) {
      report.broken.push({ generation: m.id, reachedSeq: seq - 1, reason: found ? `segment ${seq} (${found.pack}) ${problem}` : problem });
      break;
    }
    segments.push(found!.row);
  }
  generation.segments = segments.length;
  generation.bytes = segments.reduce((n, s) => n + s.size_bytes, 0);
  generation.first_read_at = segments[0]?.read_at ?? null;
  const lastRead = segments.at(-1)?.read_at ?? null;
  // Every commit before its last sync point was stored, when it ended and the bucket has all its segments.
  const whole = m.segments !== null && segments.length === m.segments;
  generation.last_read_at = whole && m.storedThrough && (!lastRead || m.storedThrough > lastRead) ? m.storedThrough : lastRead;
  const packs = [...used.values()].filter((p) => p.first_seq <= segments.length);
  if (m.segments !== null && segments.length < m.segments && segments.length === last) {
    report.broken.push({ generation: m.id, reachedSeq: last, reason: `it ended with ${m.segments} segments; the bucket holds ${last}` });
  }
  return catalog.walBucket.importGeneration(generation, segments, packs) ? segments.length : null;
}
