import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';

const WORDS = (
  'workflow step trigger webhook schedule retry timeout payload approve reject invoice customer order ' +
  'shipment draft review publish archive token session browser page click extract transform load ' +
  'report export import sync queue worker agent task status pending running completed failed error ' +
  'warning notice user admin team project budget quarter region north south east west alpha beta'
).split(' ');

/** Text that compresses about as well as an application's JSON does (3–4× with gzip -1). */
function textPool(count: number, words: number): string[] {
  const pool: string[] = [];
  for (let i = 0; i < count; i++) {
    const parts: string[] = [];
    for (let w = 0; w < words; w++) parts.push(WORDS[(Math.random() * WORDS.length) | 0]!);
    pool.push(parts.join(' '));
  }
  return pool;
}

const ACCOUNTS = 1_000;

/**
 * A database shaped like the Workstation application's: users, workflows with JSON definitions,
 * executions with their output, an audit log, and accounts for the writer's transfers; every
 * table with the indexes an application would have. Rows are added until the file reaches
 * `sizeBytes`, then the file is switched to WAL and checkpointed.
 */
export function generateDatabase(file: string, sizeBytes: number): { bytes: number; rows: number } {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  const db = new Database(file);
  // Generation only: nothing else reads the file yet, so durability is not needed until the end.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  db.exec(`
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE workflows (
      id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL,
      definition TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE INDEX workflows_owner ON workflows(owner_id, updated_at);
    CREATE INDEX workflows_name ON workflows(name);
    CREATE TABLE executions (
      id INTEGER PRIMARY KEY, workflow_id INTEGER NOT NULL REFERENCES workflows(id), status TEXT NOT NULL,
      started_at TEXT NOT NULL, finished_at TEXT, duration_ms INTEGER, output TEXT);
    CREATE INDEX executions_workflow ON executions(workflow_id, started_at);
    CREATE INDEX executions_status ON executions(status, started_at);
    CREATE TABLE audit_log (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, action TEXT NOT NULL, entity TEXT NOT NULL,
      detail TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX audit_user ON audit_log(user_id, at);
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
  `);
  const pool = textPool(4_096, 24);
  const pick = () => pool[(Math.random() * pool.length) | 0]!;
  const stamp = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 7_919).toISOString();
  const insUser = db.prepare('INSERT INTO users (email, name, created_at) VALUES (?, ?, ?)');
  const insWorkflow = db.prepare(
    'INSERT INTO workflows (owner_id, name, definition, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insExecution = db.prepare(
    'INSERT INTO executions (workflow_id, status, started_at, finished_at, duration_ms, output) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insAudit = db.prepare('INSERT INTO audit_log (user_id, action, entity, detail, at) VALUES (?, ?, ?, ?, ?)');
  const insAccount = db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?)');
  const statuses = ['completed', 'completed', 'completed', 'failed', 'running'];

  let users = 0;
  let workflows = 0;
  let rows = 0;
  db.transaction(() => {
    for (let i = 1; i <= ACCOUNTS; i++) insAccount.run(i, 1_000);
  })();
  const batch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) {
      if (rows % 200 === 0) {
        users++;
        insUser.run(`user${users}-${randomBytes(4).toString('hex')}@example.com`, `User ${users}`, stamp(rows));
      }
      if (rows % 20 === 0) {
        workflows++;
        const definition = JSON.stringify({ steps: [pick(), pick(), pick()], trigger: pick(), id: randomBytes(8).toString('hex') });
        insWorkflow.run(
          1 + ((Math.random() * users) | 0),
          `workflow ${workflows} ${pick().slice(0, 30)}`,
          definition,
          'active',
          stamp(rows),
          stamp(rows + 5),
        );
      }
      const wf = 1 + ((Math.random() * workflows) | 0);
      const output = JSON.stringify({ log: [pick(), pick()], result: pick().slice(0, 60), ref: randomBytes(12).toString('hex') });
      insExecution.run(wf, statuses[rows % statuses.length]!, stamp(rows), stamp(rows + 3), (Math.random() * 60_000) | 0, output);
      if (rows % 4 === 0)
        insAudit.run(1 + ((Math.random() * users) | 0), 'run', `workflow:${wf}`, `{"note":"${pick().slice(0, 40)}"}`, stamp(rows));
      rows++;
    }
  });
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  const size = () => Number(db.pragma('page_count', { simple: true })) * pageSize;
  while (size() < sizeBytes) batch(5_000);
  db.pragma('journal_mode = DELETE');
  db.pragma('journal_mode = WAL');
  db.close();
  return { bytes: fs.statSync(file).size, rows };
}
