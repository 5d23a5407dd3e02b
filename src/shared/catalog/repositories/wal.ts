import type Database from 'better-sqlite3';
import type { WalGenerationRow, WalSegmentRow } from '../catalog-schema.js';
import { now } from './now.js';

/** A WAL started afresh has its first frame here. */
const WAL_HEADER_BYTES = 32;

export type NewSegment = Omit<WalSegmentRow, 'seq' | 'mirrored'>;

/** Where the WAL stood when a generation began. */
export interface GenerationStart {
  salt1: number;
  salt2: number;
  offset: number;
  checksum: readonly [number, number];
  bigEndian: boolean;
}

/** `wal_generation` and `wal_segment`: what the WAL archive holds, so that nothing lists a bucket per sync. */
export class WalArchive {
  constructor(private readonly db: Database.Database) {}

  /** Ends the open generation (if any) and begins another at `start`; returns it. */
  beginGeneration(reason: string, pageSize: number, start: GenerationStart | null): WalGenerationRow {
    return this.db.transaction(() => {
      this.db.prepare(`UPDATE wal_generation SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL`).run(now(), reason);
      const { lastInsertRowid } = this.db
        .prepare(
          `INSERT INTO wal_generation (started_at, reason, page_size, start_salt1, start_salt2, start_offset, start_checksum0,
             start_checksum1, big_endian) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          now(),
          reason,
          pageSize,
          start?.salt1 ?? null,
          start?.salt2 ?? null,
          start?.offset ?? null,
          start?.checksum[0] ?? null,
          start?.checksum[1] ?? null,
          start ? (start.bigEndian ? 1 : 0) : null,
        );
      return this.generation(Number(lastInsertRowid))!;
    })();
  }

  /**
   * Ends a generation. `storedThrough`, when given, is a moment at which every commit before it was
   * stored (the archiver's last sync point): the generation keeps reaching it in the window as it
   * did while it ran, even when no segment was read after it.
   */
  endGeneration(id: number, reason: string, storedThrough?: string): void {
    this.db
      .prepare(
        `UPDATE wal_generation SET ended_at = ?, end_reason = ?,
           last_read_at = CASE WHEN ? IS NOT NULL AND (last_read_at IS NULL OR last_read_at < ?) THEN ? ELSE last_read_at END
         WHERE id = ? AND ended_at IS NULL`,
      )
      .run(now(), reason, storedThrough ?? null, storedThrough ?? null, storedThrough ?? null, id);
  }

  setSnapshot(id: number, backupId: number, at: string): void {
    this.db.prepare(`UPDATE wal_generation SET snapshot_backup_id = ?, snapshot_at = ? WHERE id = ?`).run(backupId, at, id);
  }

  generation(id: number): WalGenerationRow | undefined {
    return this.db.prepare('SELECT * FROM wal_generation WHERE id = ?').get(id) as WalGenerationRow | undefined;
  }

  /** The generation being written, if any. */
  openGeneration(): WalGenerationRow | undefined {
    return this.db.prepare('SELECT * FROM wal_generation WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1').get() as
      WalGenerationRow | undefined;
  }

  /** Oldest first. */
  generations(): WalGenerationRow[] {
    return this.db.prepare('SELECT * FROM wal_generation ORDER BY id').all() as WalGenerationRow[];
  }

  /**
   * Records a stored segment as the next of its generation; returns its sequence number. Refuses
   * one that does not continue the chain (the end of the one before, or the top of a WAL started
   * afresh): two archivers at once, or one that lost track, can never record a broken chain.
   */
  addSegment(segment: NewSegment): number {
    return this.db.transaction(() => {
      const last = this.lastSegment(segment.generation_id);
      const generation = this.generation(segment.generation_id);
      const after = last
        ? { salt1: last.salt1, salt2: last.salt2, offset: last.last_offset, c0: last.end_checksum0, c1: last.end_checksum1 }
        : generation?.start_offset != null
          ? {
              salt1: generation.start_salt1,
              salt2: generation.start_salt2,
              offset: generation.start_offset,
              c0: generation.start_checksum0,
              c1: generation.start_checksum1,
            }
          : undefined;
      const continues =
        !after ||
        (segment.salt1 === after.salt1 &&
          segment.salt2 === after.salt2 &&
          segment.first_offset === after.offset &&
          segment.start_checksum0 === after.c0 &&
          segment.start_checksum1 === after.c1) ||
        // The top of a WAL restarted once: SQLite adds one to salt-1 at every restart, so any
        // other salts are another file, or restarts whose frames were never archived.
        (segment.first_offset === WAL_HEADER_BYTES && segment.salt1 === ((after.salt1 ?? 0) + 1) >>> 0);
      if (!generation || generation.ended_at !== null || !continues) {
        throw new Error(
          `WAL segment ${segment.file_name} does not continue generation ${segment.generation_id}` +
            (generation?.ended_at ? ' (it has ended)' : ''),
        );
      }
      const { next } = this.db
        .prepare('SELECT coalesce(max(seq), 0) + 1 AS next FROM wal_segment WHERE generation_id = ?')
        .get(segment.generation_id) as { next: number };
      this.db
        .prepare(
          `INSERT INTO wal_segment (generation_id, seq, file_name, salt1, salt2, big_endian, page_size, first_offset, last_offset,
             start_checksum0, start_checksum1, end_checksum0, end_checksum1, frames, commits, db_size_pages, read_at, size_bytes,
             checksum, compression, encryption)
           VALUES (@generation_id, @seq, @file_name, @salt1, @salt2, @big_endian, @page_size, @first_offset, @last_offset,
             @start_checksum0, @start_checksum1, @end_checksum0, @end_checksum1, @frames, @commits, @db_size_pages, @read_at,
             @size_bytes, @checksum, @compression, @encryption)`,
        )
        .run({ ...segment, seq: next });
      this.db
        .prepare(
          `UPDATE wal_generation SET segments = segments + 1, bytes = bytes + ?, first_read_at = coalesce(first_read_at, ?),
             last_read_at = ? WHERE id = ?`,
        )
        .run(segment.size_bytes, segment.read_at, segment.read_at, segment.generation_id);
      return next;
    })();
  }

  lastSegment(generationId: number): WalSegmentRow | undefined {
    return this.db.prepare('SELECT * FROM wal_segment WHERE generation_id = ? ORDER BY seq DESC LIMIT 1').get(generationId) as
      WalSegmentRow | undefined;
  }

  /** A generation's segments in order. */
  segments(generationId: number): WalSegmentRow[] {
    return this.db.prepare('SELECT * FROM wal_segment WHERE generation_id = ? ORDER BY seq').all(generationId) as WalSegmentRow[];
  }

  /** Per generation: segment count, bytes, and the times of its first and last segment (kept by `addSegment`, not counted). */
  summary(): { generation_id: number; segments: number; bytes: number; first_read_at: string | null; last_read_at: string | null }[] {
    return this.db
      .prepare(`SELECT id AS generation_id, segments, bytes, first_read_at, last_read_at FROM wal_generation ORDER BY id`)
      .all() as { generation_id: number; segments: number; bytes: number; first_read_at: string | null; last_read_at: string | null }[];
  }

  setMirrored(fileName: string, ok: boolean): void {
    this.db.prepare('UPDATE wal_segment SET mirrored = ? WHERE file_name = ?').run(ok ? 1 : 0, fileName);
  }

  /** Segments the mirror lacks, oldest first. */
  unmirrored(limit = 1_000): WalSegmentRow[] {
    return this.db
      .prepare('SELECT * FROM wal_segment WHERE mirrored IS NOT 1 ORDER BY generation_id, seq LIMIT ?')
      .all(limit) as WalSegmentRow[];
  }

  /** Backup ids that generations still use as their snapshot: retention keeps them. */
  snapshotIds(): Set<number> {
    const rows = this.db.prepare('SELECT snapshot_backup_id AS id FROM wal_generation WHERE snapshot_backup_id IS NOT NULL').all() as {
      id: number;
    }[];
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Deletes the generations that ended before `before`, with their segment rows (never the newest
   * generation, nor one whose snapshot is in `inUse`: a restore or verification is reading it);
   * returns their ids and the segment file names to delete.
   */
  pruneGenerations(before: string, inUse: Set<number> = new Set()): { generations: number[]; files: string[] } {
    return this.db.transaction(() => {
      const doomed = (
        this.db
          .prepare(
            `SELECT g.id, g.snapshot_backup_id FROM wal_generation g WHERE g.ended_at IS NOT NULL AND g.ended_at < ?
               AND g.id < (SELECT max(id) FROM wal_generation)`,
          )
          .all(before) as { id: number; snapshot_backup_id: number | null }[]
      ).filter((g) => g.snapshot_backup_id === null || !inUse.has(g.snapshot_backup_id));
      const files: string[] = [];
      for (const { id } of doomed) {
        for (const s of this.segments(id)) files.push(s.file_name);
        this.db.prepare('DELETE FROM wal_segment WHERE generation_id = ?').run(id);
        this.db.prepare('DELETE FROM wal_generation WHERE id = ?').run(id);
      }
      return { generations: doomed.map((g) => g.id), files };
    })();
  }

  // ---- what the mirror holds (off-site lag: src/shared/wal/offsite.ts) ----------------------------

  /** Generations whose snapshot backup has a good copy at `location` (`backup_copy`). */
  generationsWithSnapshotCopy(location: string): Set<number> {
    const rows = this.db
      .prepare(
        `SELECT g.id FROM wal_generation g JOIN backup_copy c ON c.backup_id = g.snapshot_backup_id
           WHERE c.location = ? AND c.status = 'ok'`,
      )
      .all(location) as { id: number }[];
    return new Set(rows.map((r) => r.id));
  }

  /** A generation's first segment the mirror lacks, if any (through the `wal_segment_unmirrored` index). */
  firstUnmirrored(generationId: number): WalSegmentRow | undefined {
    return this.db
      .prepare('SELECT * FROM wal_segment WHERE generation_id = ? AND mirrored IS NOT 1 ORDER BY seq LIMIT 1')
      .get(generationId) as WalSegmentRow | undefined;
  }

  /** When the last segment of a generation before `seq` was read, or null when there is none. */
  readAtBefore(generationId: number, seq: number): string | null {
    const row = this.db
      .prepare('SELECT read_at FROM wal_segment WHERE generation_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1')
      .get(generationId, seq) as { read_at: string } | undefined;
    return row?.read_at ?? null;
  }

  /**
   * How many segments the mirror lacks, and when the first of them (in archive order) was read.
   * Both read the `wal_segment_unmirrored` index only, never the whole table.
   */
  unmirroredSummary(): { count: number; oldestReadAt: string | null } {
    const { n } = this.db.prepare('SELECT count(*) AS n FROM wal_segment WHERE mirrored IS NOT 1').get() as { n: number };
    const first = this.db.prepare('SELECT read_at FROM wal_segment WHERE mirrored IS NOT 1 ORDER BY generation_id, seq LIMIT 1').get() as
      { read_at: string } | undefined;
    return { count: n, oldestReadAt: first?.read_at ?? null };
  }
}
