import Database from 'better-sqlite3';

export const ACCOUNTS = 100;
export const INITIAL_BALANCE = 1_000;

/**
 * A database shaped like the application's: accounts whose balances always sum to
 * ACCOUNTS × INITIAL_BALANCE (transfers keep the sum), and a workflows table with an index,
 * padded to roughly `sizeMb`.
 */
export function createWorkstationDb(file: string, { sizeMb = 1, wal = true }: { sizeMb?: number; wal?: boolean } = {}): void {
  const db = new Database(file);
  try {
    if (wal) db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
      CREATE TABLE workflows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, definition TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE INDEX workflows_name ON workflows(name);
    `);
    const account = db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?)');
    const workflow = db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, ?, ?)');
    const rows = Math.max(1, Math.round((sizeMb * 1024 * 1024) / 600));
    db.transaction(() => {
      for (let i = 1; i <= ACCOUNTS; i++) account.run(i, INITIAL_BALANCE);
      for (let i = 0; i < rows; i++) workflow.run(`workflow-${i}`, 'x'.repeat(400) + i, new Date().toISOString());
    })();
  } finally {
    db.close();
  }
}

export function balanceSum(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT sum(balance) AS s FROM accounts').get() as { s: number }).s;
  } finally {
    db.close();
  }
}

export function query<T>(file: string, sql: string, ...args: unknown[]): T {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).get(...args) as T;
  } finally {
    db.close();
  }
}

export function integrity(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}

/** Sets the one row of a `marker` table (made if missing), so a test can tell two versions of a database apart. */
export function writeMarker(file: string, value: string): void {
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS marker (v TEXT)');
    db.exec('DELETE FROM marker');
    db.prepare('INSERT INTO marker (v) VALUES (?)').run(value);
  } finally {
    db.close();
  }
}
