import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow, WalSegmentRow } from '../catalog/catalog-schema.js';
import { messageOf } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import { verifyAndRecord } from '../verify/verify.js';
import { SegmentReader } from './pack-reader.js';
import { restartSalt } from './wal-format.js';

/** A WAL started afresh has its first frame here. */
const WAL_HEADER_BYTES = 32;

/** What the archive verification found in one generation. */
export interface GenerationVerification {
  generation: number;
  ok: boolean;
  verifiedAt: string;
  segmentsChecked: number;
  /** Segments whose primary copy is missing or bad and that were read from the mirror instead. */
  readFromMirror: string[];
  snapshot: { backupId: number | null; ok: boolean; message: string };
  /** The first segment that failed, and why; null when every one passed. */
  firstBad: { seq: number; file: string; reason: string } | null;
  /** Why the generation failed, one sentence; null when it passed. */
  reason: string | null;
}

export interface ArchiveVerification {
  ok: boolean;
  generations: GenerationVerification[];
}

/**
 * Why a segment does not continue the catalog's chain of its generation (sequence, salts, offsets,
 * running checksum), or undefined. The catalog refuses such rows when they are added; this finds
 * rows changed since, or a chain that was never whole.
 */
export function catalogChainProblem(
  generation: WalGenerationRow,
  previous: WalSegmentRow | undefined,
  segment: WalSegmentRow,
  expectedSeq: number,
): string | undefined {
  if (segment.seq !== expectedSeq) return `has sequence ${segment.seq} where ${expectedSeq} was expected`;
  if (segment.generation_id !== generation.id) return `belongs to generation ${segment.generation_id}`;
  // The top of a WAL restarted once since (salt-1 goes up by exactly one per restart).
  const afresh = (salt1: number | null) =>
    segment.first_offset === WAL_HEADER_BYTES && salt1 !== null && segment.salt1 === restartSalt(salt1);
  if (!previous) {
    if (generation.start_offset === null)
      return segment.first_offset === WAL_HEADER_BYTES ? undefined : `begins at ${segment.first_offset}, not at the top of the WAL`;
    const atStart =
      segment.first_offset === generation.start_offset &&
      segment.salt1 === generation.start_salt1 &&
      segment.salt2 === generation.start_salt2 &&
      segment.start_checksum0 === generation.start_checksum0 &&
      segment.start_checksum1 === generation.start_checksum1;
    return atStart || afresh(generation.start_salt1)
      ? undefined
      : `begins at ${segment.first_offset}, not where generation ${generation.id} began (${generation.start_offset})`;
  }
  const continues =
    segment.salt1 === previous.salt1 &&
    segment.salt2 === previous.salt2 &&
    segment.first_offset === previous.last_offset &&
    segment.start_checksum0 === previous.end_checksum0 &&
    segment.start_checksum1 === previous.end_checksum1;
  return continues || afresh(previous.salt1)
    ? undefined
    : `does not continue segment ${previous.seq} (${previous.file_name}): salts, offset or running checksum differ`;
}

/**
 * Verifies one generation: its snapshot backup (quick: file, SHA-256, opens, quick_check), then
 * every segment in order, read from the primary or else the mirror (SHA-256 of the stored bytes,
 * decryption, decompression, the frames' salts and WAL checksum chain), and the catalog's chain
 * from segment to segment. Stops at the first bad segment: the generation reaches no further.
 * Records the outcome in the catalog (`wal_verification`).
 */
export async function verifyGeneration(config: Config, catalog: Catalog, generation: WalGenerationRow): Promise<GenerationVerification> {
  const snapshot = await checkSnapshot(config, catalog, generation);
  let checked = 0;
  let firstBad: GenerationVerification['firstBad'] = null;
  const readFromMirror: string[] = [];
  let previous: WalSegmentRow | undefined;
  const reader = new SegmentReader(config, catalog);
  try {
    for (const segment of catalog.wal.segments(generation.id)) {
      const chain = catalogChainProblem(generation, previous, segment, (previous?.seq ?? 0) + 1);
      const read = chain ? { problem: `segment ${segment.file_name} ${chain}` } : await readOnce(reader, segment);
      const problem = read.problem;
      if (read.source === 'mirror') readFromMirror.push(segment.file_name);
      checked++;
      if (problem) {
        firstBad = { seq: segment.seq, file: segment.file_name, reason: problem };
        break;
      }
      previous = segment;
    }
  } finally {
    reader.close();
  }
  const reasons = [
    ...(snapshot.ok ? [] : [`its snapshot (backup ${snapshot.backupId ?? 'none'}) fails: ${snapshot.message}`]),
    ...(firstBad ? [`segment ${firstBad.seq} (${firstBad.file}) is bad: ${firstBad.reason}`] : []),
  ];
  const outcome: GenerationVerification = {
    generation: generation.id,
    ok: reasons.length === 0,
    verifiedAt: new Date().toISOString(),
    segmentsChecked: checked,
    readFromMirror,
    snapshot,
    firstBad,
    reason: reasons.length ? `WAL generation ${generation.id}: ${reasons.join('; ')}` : null,
  };
  catalog.drills.recordArchiveVerification({
    generation_id: generation.id,
    verified_at: outcome.verifiedAt,
    ok: outcome.ok ? 1 : 0,
    segments_checked: checked,
    snapshot_ok: snapshot.ok ? 1 : 0,
    bad_seq: firstBad?.seq ?? null,
    bad_file: firstBad?.file ?? null,
    reason: outcome.reason,
  });
  return outcome;
}

/** Verifies every generation of the archive, oldest first (see verifyGeneration). */
export async function verifyArchive(config: Config, catalog: Catalog, signal?: AbortSignal): Promise<ArchiveVerification> {
  const generations: GenerationVerification[] = [];
  for (const generation of catalog.wal.generations()) {
    signal?.throwIfAborted();
    // A generation whose snapshot is still being taken has nothing to restore yet: not a failure.
    if (generation.snapshot_backup_id === null) continue;
    generations.push(await verifyGeneration(config, catalog, generation));
  }
  return { ok: generations.every((g) => g.ok), generations };
}

async function readOnce(reader: SegmentReader, segment: WalSegmentRow): Promise<{ problem?: string; source?: 'primary' | 'mirror' }> {
  try {
    const read = await reader.read(segment);
    return read.ok ? { source: read.source } : { problem: read.problem };
  } catch (err) {
    return { problem: `segment ${segment.file_name}: ${messageOf(err)}` };
  }
}

async function checkSnapshot(config: Config, catalog: Catalog, generation: WalGenerationRow): Promise<GenerationVerification['snapshot']> {
  const backupId = generation.snapshot_backup_id;
  const backup = backupId === null ? undefined : catalog.getBackup(backupId);
  if (!backup || backup.status !== 'completed') {
    return { backupId, ok: false, message: `backup ${backupId ?? '(none)'} is ${backup ? backup.status : 'gone from the catalog'}` };
  }
  try {
    const result = await verifyAndRecord(config, catalog, backup, 'quick');
    return { backupId, ok: result.valid, message: result.message };
  } catch (err) {
    return { backupId, ok: false, message: messageOf(err) };
  }
}
