import type Database from 'better-sqlite3';
import type { WalGenerationRow, WalPackRow, WalSegmentRow } from '../catalog-schema.js';
import { now } from './now.js';

/** The most segments a pack holds (PACK_MAX_SEGMENTS of wal/bucket-format.ts, which the catalog does not import). */
const PACK_MAX_SEGMENTS = 20_000;
/** The setting listing bucket objects that compaction retired and has yet to delete. */
const RETIRED = 'wal-packs-retired';

/** A bucket object waiting to be deleted: since `at`, no catalog row points readers at it. */
export interface RetiredPack {
  name: string;
  generation: number;
  at: string;
}

/**
 * `wal_pack` and `wal_published`: which bucket object holds which segments, and which generation
 * descriptions the bucket has as they are now; and the import of a generation read back from the
 * bucket (`reindex` on a host that lost its catalog).
 */
export class WalBucket {
  constructor(private readonly db: Database.Database) {}

  /** Records a pack sent to the bucket and marks its segments copied, in one transaction. */
  recordPack(pack: Omit<WalPackRow, 'created_at'>): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT OR REPLACE INTO wal_pack (name, generation_id, first_seq, last_seq, size_bytes, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(pack.name, pack.generation_id, pack.first_seq, pack.last_seq, pack.size_bytes, now());
      this.db
        .prepare('UPDATE wal_segment SET mirrored = 1 WHERE generation_id = ? AND seq BETWEEN ? AND ?')
        .run(pack.generation_id, pack.first_seq, pack.last_seq);
    })();
  }

  /**
   * The pack that holds a segment, if one does: of several (a pass sent twice, or a compacted pack
   * beside its parts in a catalog rebuilt from the bucket), the widest, then the newest. No pack
   * holds more than PACK_MAX_SEGMENTS segments, which bounds the rows looked at.
   */
  packOf(generationId: number, seq: number): WalPackRow | undefined {
    return this.db
      .prepare(
        `SELECT * FROM wal_pack WHERE generation_id = ? AND first_seq BETWEEN ? AND ? AND last_seq >= ?
         ORDER BY last_seq - first_seq DESC, first_seq DESC LIMIT 1`,
      )
      .get(generationId, seq - PACK_MAX_SEGMENTS + 1, seq, seq) as WalPackRow | undefined;
  }

  packs(generationId: number): WalPackRow[] {
    return this.db.prepare('SELECT * FROM wal_pack WHERE generation_id = ? ORDER BY first_seq').all(generationId) as WalPackRow[];
  }

  publishedDigest(generationId: number): string | undefined {
    const row = this.db.prepare('SELECT digest FROM wal_published WHERE generation_id = ?').get(generationId) as
      { digest: string } | undefined;
    return row?.digest;
  }

  setPublished(generationId: number, digest: string): void {
    this.db.prepare('INSERT OR REPLACE INTO wal_published (generation_id, digest) VALUES (?, ?)').run(generationId, digest);
  }

  /** Forgets what the bucket held of generations that retention deleted. */
  forget(generationIds: number[]): void {
    this.db.transaction(() => {
      for (const id of generationIds) {
        this.db.prepare('DELETE FROM wal_pack WHERE generation_id = ?').run(id);
        this.db.prepare('DELETE FROM wal_published WHERE generation_id = ?').run(id);
      }
    })();
  }

  /**
   * Puts back a generation read from the bucket, with its id, its segments (already checked to
   * chain) and the packs that hold them. Returns false, changing nothing, when the catalog has a
   * generation with that id already.
   */
  importGeneration(generation: WalGenerationRow, segments: WalSegmentRow[], packs: Omit<WalPackRow, 'created_at'>[]): boolean {
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM wal_generation WHERE id = ?').get(generation.id)) return false;
      this.db
        .prepare(
          `INSERT INTO wal_generation (id, started_at, reason, page_size, start_salt1, start_salt2, start_offset, start_checksum0,
             start_checksum1, big_endian, snapshot_backup_id, snapshot_at, ended_at, end_reason, segments, bytes, first_read_at,
             last_read_at)
           VALUES (@id, @started_at, @reason, @page_size, @start_salt1, @start_salt2, @start_offset, @start_checksum0,
             @start_checksum1, @big_endian, @snapshot_backup_id, @snapshot_at, @ended_at, @end_reason, @segments, @bytes,
             @first_read_at, @last_read_at)`,
        )
        .run(generation);
      const insert = this.db.prepare(
        `INSERT INTO wal_segment (generation_id, seq, file_name, salt1, salt2, big_endian, page_size, first_offset, last_offset,
           start_checksum0, start_checksum1, end_checksum0, end_checksum1, frames, commits, db_size_pages, read_at, size_bytes,
           checksum, compression, encryption, mirrored)
         VALUES (@generation_id, @seq, @file_name, @salt1, @salt2, @big_endian, @page_size, @first_offset, @last_offset,
           @start_checksum0, @start_checksum1, @end_checksum0, @end_checksum1, @frames, @commits, @db_size_pages, @read_at,
           @size_bytes, @checksum, @compression, @encryption, 1)`,
      );
      for (const s of segments) insert.run(s);
      for (const p of packs) {
        this.db
          .prepare(
            `INSERT OR REPLACE INTO wal_pack (name, generation_id, first_seq, last_seq, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(p.name, p.generation_id, p.first_seq, p.last_seq, p.size_bytes, now());
      }
      return true;
    })();
  }

  // ---- compaction (wal/bucket-compact.ts) ------------------------------------------------------

  /** A generation's packs in order (first segment, then widest), each with the read time of its newest segment. */
  packsForCompaction(generationId: number): (WalPackRow & { newest_read_at: string })[] {
    return this.db
      .prepare(
        `SELECT p.*, s.read_at AS newest_read_at FROM wal_pack p
         JOIN wal_segment s ON s.generation_id = p.generation_id AND s.seq = p.last_seq
         WHERE p.generation_id = ? ORDER BY p.first_seq, p.last_seq DESC`,
      )
      .all(generationId) as (WalPackRow & { newest_read_at: string })[];
  }

  /** A generation's segments `first`..`last`, in order. */
  segmentsBetween(generationId: number, first: number, last: number): WalSegmentRow[] {
    return this.db
      .prepare('SELECT * FROM wal_segment WHERE generation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq')
      .all(generationId, first, last) as WalSegmentRow[];
  }

  isPack(name: string): boolean {
    return this.db.prepare('SELECT 1 FROM wal_pack WHERE name = ?').get(name) !== undefined;
  }

  retiredPacks(): RetiredPack[] {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(RETIRED) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as RetiredPack[]) : [];
  }

  /** Adds objects to the retired list (a name already there takes the new time). */
  retirePacks(entries: RetiredPack[]): void {
    const names = entries.map((e) => e.name);
    this.db.transaction(() => this.#setRetired(entries, names)).immediate();
  }

  /** Takes names off the retired list: deleted from the bucket, or found to be live packs. */
  unretirePacks(names: string[]): void {
    this.db.transaction(() => this.#setRetired([], names)).immediate();
  }

  /**
   * Records a compacted pack in place of its parts, in one transaction: its row, the parts' rows
   * deleted and their names retired at `at`, its own name taken off the retired list. Returns
   * false, changing nothing, when a part's row is gone or no longer as it was read (retention).
   */
  replacePacks(merged: Omit<WalPackRow, 'created_at'>, parts: WalPackRow[], at: string): boolean {
    return this.db
      .transaction(() => {
        const get = this.db.prepare('SELECT * FROM wal_pack WHERE name = ?');
        for (const part of parts) {
          const row = get.get(part.name) as WalPackRow | undefined;
          if (row?.first_seq !== part.first_seq || row.last_seq !== part.last_seq || row.generation_id !== part.generation_id) return false;
        }
        const remove = this.db.prepare('DELETE FROM wal_pack WHERE name = ?');
        for (const part of parts) remove.run(part.name);
        this.db
          .prepare(
            `INSERT OR REPLACE INTO wal_pack (name, generation_id, first_seq, last_seq, size_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(merged.name, merged.generation_id, merged.first_seq, merged.last_seq, merged.size_bytes, now());
        const retired = parts.map((p) => ({ name: p.name, generation: p.generation_id, at }));
        this.#setRetired(retired, [merged.name, ...retired.map((r) => r.name)]);
        return true;
      })
      .immediate();
  }

  /** The retired list without `drop`, plus `add` (inside the caller's transaction). */
  #setRetired(add: RetiredPack[], drop: string[]): void {
    const gone = new Set(drop);
    const list = [...this.retiredPacks().filter((r) => !gone.has(r.name)), ...add];
    this.db
      .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(RETIRED, JSON.stringify(list));
  }
}
