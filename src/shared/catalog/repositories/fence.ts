import type Database from 'better-sqlite3';

/** `lock_fence`: one counter, raised by every grant of the database lock. */
export class Fence {
  constructor(private readonly db: Database.Database) {}

  /** A new fencing value, larger than any handed out before. */
  next(): number {
    return (this.db.prepare('UPDATE lock_fence SET value = value + 1 WHERE id = 1 RETURNING value').get() as { value: number }).value;
  }

  current(): number {
    return (this.db.prepare('SELECT value FROM lock_fence WHERE id = 1').get() as { value: number }).value;
  }
}
