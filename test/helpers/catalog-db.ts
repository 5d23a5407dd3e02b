import Database from 'better-sqlite3';

/**
 * A connection of the test's own to a catalog file, for crafting rows (old dates, forged
 * checksums, thousands of rows) that the service never writes, and for reading rows back raw.
 * The service's `Catalog` keeps its connection private, so SQL runs only in its repositories.
 */
export function catalogDb(file: string): Database.Database {
  const db = new Database(file, { fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}

/** Runs `fn` on a connection of its own to the catalog file, closed afterwards. */
export function withCatalogDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = catalogDb(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
