import type Database from 'better-sqlite3';
import type { WalGenerationRow, WalPackRow, WalSegmentRow } from '../catalog-schema.js';
import { now } from './now.js';

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

  /** The pack that holds a segment, if one does (the newest, should a pass have been sent twice). */
  packOf(generationId: number, seq: number): WalPackRow | undefined {
    return this.db
      .prepare(
        `SELECT * FROM wal_pack WHERE generation_id = ? AND first_seq <= ? AND last_seq >= ?
         ORDER BY first_seq DESC, last_seq DESC LIMIT 1`,
      )
      .get(generationId, seq, seq) as WalPackRow | undefined;
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
}
