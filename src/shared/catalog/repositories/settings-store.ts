import type Database from 'better-sqlite3';

/** `settings`: JSON values by key, which survive a restart of every process (Redis keeps nothing). */
export class SettingsStore {
  constructor(private readonly db: Database.Database) {}

  get<T>(key: string): T | undefined {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  set(key: string, value: unknown): void {
    this.db
      .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, JSON.stringify(value));
  }

  /**
   * Replaces a value by one computed from the stored one (undefined when none), with no other
   * write in between; returns what was stored.
   */
  update<T>(key: string, next: (stored: unknown) => T): T {
    // Immediate: read-then-write started deferred fails with SQLITE_BUSY, without waiting, when
    // another process commits to the catalog in between (every backup does).
    return this.db
      .transaction(() => {
        const value = next(this.get<unknown>(key));
        this.set(key, value);
        return value;
      })
      .immediate();
  }
}
