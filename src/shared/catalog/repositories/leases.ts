import type Database from 'better-sqlite3';

/** `backup_lease`: backups that a running job reads, which retention must keep until the lease expires. */
export class Leases {
  constructor(private readonly db: Database.Database) {}

  take(backupId: number, holder: string, ttlMs: number): void {
    this.db
      .prepare('INSERT OR REPLACE INTO backup_lease (backup_id, holder, expires_at) VALUES (?, ?, ?)')
      .run(backupId, holder, Date.now() + ttlMs);
  }

  release(backupId: number, holder: string): void {
    this.db.prepare('DELETE FROM backup_lease WHERE backup_id = ? AND holder = ?').run(backupId, holder);
  }

  leasedIds(): Set<number> {
    const rows = this.db.prepare('SELECT DISTINCT backup_id FROM backup_lease WHERE expires_at > ?').all(Date.now()) as {
      backup_id: number;
    }[];
    return new Set(rows.map((r) => r.backup_id));
  }
}
