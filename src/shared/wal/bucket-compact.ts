import type { Catalog } from '../catalog/catalog.js';
import type { WalPackRow } from '../catalog/catalog-schema.js';
import { keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';
import { ensurePrivateDir, removeQuietly, tempPath } from '../runtime/files.js';
import { StorageError, type BackupStorage } from '../storage/storage.js';
import { archiveIdOf, PACK_MAX_SEGMENTS, packHeader, packName, packPrefix } from './bucket-format.js';
import { writeMerged } from './bucket-merge.js';
import { readPackHead } from './pack-reader.js';
import { segmentStoresOf } from './segment-store.js';

/**
 * Compaction of the WAL archive's packs in the bucket (docs/wal-archiving.md, "Compaction"). The
 * mirror loop writes one pack per pass (86,400 a day at one a second); this merges them by time:
 *
 * - A pack belongs to the widest UTC window (an hour, ten minutes, a minute) that holds its newest
 *   segment's read time and has closed (ends at or before now); to none while its minute runs.
 * - Consecutive packs of a generation in one closed window are merged into one pack (at most
 *   PACK_MAX_SEGMENTS segments and MERGED_MAX_BYTES): minute packs, then ten-minute packs, then
 *   hour packs, as the windows close; an hour pack stays.
 *
 * A merge writes the segments into a temp file (`writeMerged`): from BACKUP_DIR/wal where the file
 * has the catalog's SHA-256, else streamed out of its part in the bucket (one segment in memory at
 * a time, checked against the part's header and the catalog's row); the header is written from the
 * catalog's rows (`packHeader`: archive id, MAC). It uploads the file, reads its header back (one
 * ranged GET), and then, in one catalog transaction, records it in place of its parts, which go
 * on the retired list (a catalog setting). New readers find the merged pack (`packOf`); a retired
 * part is deleted from the bucket RETIRED_GRACE_MS later, and not while a restore holds a lease on
 * its generation's snapshot, so a reader that looked it up before keeps it long enough. A failed
 * deletion stays on the list for the next run. The merged name goes on the list before its upload
 * and leaves it when recorded: an upload that is never recorded is deleted the same way.
 */

/** Window lengths, widest first; epoch multiples, so UTC-aligned. */
const TIERS_MS = [3_600_000, 600_000, 60_000];
/** How long a retired object stays in the bucket after nothing in the catalog points at it. */
export const RETIRED_GRACE_MS = 10 * 60_000;
/** A merged pack holds at most about this many bytes; a busier hour is kept in several. */
const MERGED_MAX_BYTES = 1024 ** 3;
/** The mirror loop compacts at most this often. */
export const COMPACT_EVERY_MS = 2 * 60_000;

/**
 * What a run did: merged packs written and recorded, the parts they `retired`, retired objects
 * `deleted` from the bucket and still `pending` (grace period, a lease, a failed deletion), and
 * the `problems` met (what was done before them stays done).
 */
export interface CompactReport {
  merged: number;
  retired: number;
  deleted: number;
  pending: number;
  /** Parts read from the bucket by the merges: only for segments whose file in BACKUP_DIR/wal is gone or damaged. */
  partsRead: number;
  problems: string[];
}

type Pack = WalPackRow & { newest_read_at: string };

/**
 * One compaction run: deletes the retired objects that are due, then merges every group of packs
 * whose window has closed by `now` (the run's start; the clock moves on from it). A bucket that
 * fails stops the run; a group whose parts fail their checks is skipped and named in `problems`.
 */
export async function compactPacks(
  config: Config,
  catalog: Catalog,
  { now = new Date(), signal }: { now?: Date; signal?: AbortSignal } = {},
): Promise<CompactReport> {
  const report: CompactReport = { merged: 0, retired: 0, deleted: 0, pending: 0, partsRead: 0, problems: [] };
  const { mirror } = segmentStoresOf(config);
  if (!mirror) return report;
  const started = performance.now();
  const clock = () => new Date(now.getTime() + performance.now() - started);
  try {
    await deleteRetired(catalog, mirror, now.getTime(), report, signal);
    generations: for (const g of catalog.wal.generations()) {
      for (const parts of groupsOf(catalog.walBucket.packsForCompaction(g.id), now.getTime())) {
        signal?.throwIfAborted();
        try {
          if (await merge(config, catalog, mirror, parts, clock, report, signal)) {
            report.merged++;
            report.retired += parts.length;
          }
        } catch (err) {
          report.problems.push(`merging ${parts[0]!.name} … ${parts.at(-1)!.name}: ${messageOf(err)}`);
          if (err instanceof StorageError || signal?.aborted) break generations;
        }
      }
    }
  } catch (err) {
    report.problems.push(messageOf(err));
  }
  report.pending = catalog.walBucket.retiredPacks().length;
  return report;
}

/** The UTC window a pack belongs to by its newest segment: the widest closed by `now`, or none. */
function windowOf(readAt: string, now: number): string | undefined {
  const t = Date.parse(readAt);
  for (const span of TIERS_MS) {
    const start = t - (t % span);
    if (start + span <= now) return `${span}@${start}`;
  }
  return undefined;
}

/**
 * Runs of two or more consecutive packs in one closed window, within the size limits. A pack held
 * whole by a wider one before it (a catalog rebuilt from a bucket that still had both) is left as
 * it is, and one that overlaps the pack before it starts a run of its own.
 */
function groupsOf(packs: Pack[], now: number): Pack[][] {
  const groups: Pack[][] = [];
  let run: Pack[] = [];
  let key: string | undefined;
  let segments = 0;
  let bytes = 0;
  let reach = 0;
  for (const p of packs) {
    if (p.last_seq <= reach) continue;
    const k = windowOf(p.newest_read_at, now);
    const n = p.last_seq - p.first_seq + 1;
    const fits = segments + n <= PACK_MAX_SEGMENTS && bytes + p.size_bytes <= MERGED_MAX_BYTES;
    const joins = k !== undefined && k === key && p.first_seq === reach + 1 && fits;
    reach = p.last_seq;
    if (joins) {
      run.push(p);
      segments += n;
      bytes += p.size_bytes;
      continue;
    }
    if (run.length > 1) groups.push(run);
    run = k === undefined ? [] : [p];
    key = k;
    segments = n;
    bytes = p.size_bytes;
  }
  if (run.length > 1) groups.push(run);
  return groups;
}

/** Deletes retired objects whose grace period is over, unless a restore leases their generation's snapshot. */
async function deleteRetired(catalog: Catalog, mirror: BackupStorage, now: number, report: CompactReport, signal?: AbortSignal) {
  const leased = catalog.leasedBackupIds();
  const snapshots = new Map(catalog.wal.generations().map((g) => [g.id, g.snapshot_backup_id]));
  const done: string[] = [];
  try {
    for (const r of catalog.walBucket.retiredPacks()) {
      if (Date.parse(r.at) + RETIRED_GRACE_MS > now) continue;
      // Recorded again (a merge retried under the same name): a live pack is never deleted.
      if (catalog.walBucket.isPack(r.name)) {
        done.push(r.name);
        continue;
      }
      // A restore or a drill reading this generation.
      if (leased.has(snapshots.get(r.generation) ?? -1)) continue;
      await mirror.remove(r.name, { signal });
      done.push(r.name);
      report.deleted++;
    }
  } finally {
    if (done.length) catalog.walBucket.unretirePacks(done);
  }
}

/** Merges one group; false when the catalog changed meanwhile (retention), which leaves the upload retired. */
async function merge(
  config: Config,
  catalog: Catalog,
  mirror: BackupStorage,
  parts: Pack[],
  clock: () => Date,
  report: CompactReport,
  signal?: AbortSignal,
): Promise<boolean> {
  const generation = parts[0]!.generation_id;
  const first = parts[0]!.first_seq;
  const last = parts.at(-1)!.last_seq;
  const rows = catalog.walBucket.segmentsBetween(generation, first, last);
  if (rows.length !== last - first + 1) return false;
  const name = packName(generation, first, last);
  const archive = archiveIdOf(catalog);
  const prefix = packPrefix(packHeader(generation, rows, archive, keyringOf(config)));
  // Until recorded, an object under this name is to be deleted: a run stopped half way leaves none for good.
  catalog.walBucket.retirePacks([{ name, generation, at: clock().toISOString() }]);
  const { primary } = segmentStoresOf(config);
  await ensurePrivateDir(primary.dir);
  const temp = tempPath(primary.dir, 'put');
  let size: number;
  try {
    const written = await writeMerged(temp, prefix, parts, rows, mirror, config, signal);
    size = written.size;
    report.partsRead += written.partsRead;
    await (mirror.putNew ?? mirror.put).call(mirror, temp, name, written.sha256, { signal });
  } finally {
    await removeQuietly(temp);
  }
  // Its header alone, in one ranged GET of as many bytes as were written for it.
  const back = await readPackHead(mirror, name, config, { generation, firstSeq: first, lastSeq: last }, prefix.length);
  const held = back.segments;
  const same =
    back.archive === archive &&
    held.length === rows.length &&
    held.every((s, i) => s.seq === rows[i]!.seq && s.fileName === rows[i]!.file_name && s.sha256 === rows[i]!.checksum);
  if (!same) throw new Error(`${name}, read back from the bucket, does not name the segments written to it`);
  const merged = { name, generation_id: generation, first_seq: first, last_seq: last, size_bytes: size };
  return catalog.walBucket.replacePacks(merged, parts, clock().toISOString());
}

/**
 * Compaction as the mirror loop runs it: `poke` (after a good pass) starts `compactPacks` in the
 * background when none is running and COMPACT_EVERY_MS have passed since the last one began (the
 * first one that long after the loop started), so a long merge never holds up the next pass.
 * `idle` waits for the run in flight. A failure is logged once, until a run succeeds.
 */
export function backgroundCompaction({ config, catalog, log }: { config: Config; catalog: Catalog; log: Logger }) {
  let running: Promise<void> | undefined;
  let last = Date.now();
  let failing = false;
  return {
    poke(signal: AbortSignal): void {
      if (running || Date.now() - last < COMPACT_EVERY_MS) return;
      last = Date.now();
      running = compactPacks(config, catalog, { signal })
        .then((report) => {
          if (report.problems.length) throw new Error(report.problems.join('; '));
          if (failing) log.info('WAL archive: compacting packs in the bucket works again');
          failing = false;
          if (report.merged || report.deleted) log.debug({ ...report }, 'WAL archive: packs in the bucket compacted');
        })
        .catch((err: unknown) => {
          if (signal.aborted) return;
          if (!failing) log.warn({ reason: messageOf(err) }, 'WAL archive: compacting packs in the bucket failed; trying again later');
          failing = true;
        })
        .finally(() => {
          running = undefined;
        });
    },
    idle: (): Promise<void> => running ?? Promise.resolve(),
  };
}
