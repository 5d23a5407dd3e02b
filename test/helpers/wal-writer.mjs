/**
 * The application, as the WAL archive sees it: a process of its own that holds the database open
 * in WAL mode and, every few milliseconds, commits one transaction that inserts a numbered,
 * time-stamped row into `events` and moves money between two accounts (the balance sum never
 * changes). After each commit it writes the last committed n into a file of its own (written in
 * place, so a SIGKILL leaves the truth on disk). SIGTERM stops it; it then prints its counts.
 *
 * argv: <database> <json options> with everyMs, busyTimeoutMs, autocheckpoint (a number of pages;
 * 0 turns it off; absent leaves SQLite's default), truncateEvery (runs wal_checkpoint(TRUNCATE)
 * after every that many commits; 0 never) and lastFile.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';

const [file, optionsArg] = process.argv.slice(2);
const options = JSON.parse(optionsArg ?? '{}');
const everyMs = options.everyMs ?? 5;
const truncateEvery = options.truncateEvery ?? 0;

const db = new Database(file);
db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
db.pragma('journal_mode = WAL');
if (typeof options.autocheckpoint === 'number') db.pragma(`wal_autocheckpoint = ${options.autocheckpoint}`);
db.exec('CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, at TEXT NOT NULL)');

const insert = db.prepare('INSERT INTO events (n, at) VALUES (?, ?)');
const debit = db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?');
const credit = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const accounts = /** @type {{ c: number }} */ (db.prepare('SELECT count(*) AS c FROM accounts').get()).c;
const commit = db.transaction(
  (/** @type {number} */ n, /** @type {number} */ from, /** @type {number} */ to, /** @type {number} */ amount) => {
    insert.run(n, new Date().toISOString());
    debit.run(amount, from);
    credit.run(amount, to);
  },
);

const last = fs.openSync(options.lastFile, 'w');
const report = (/** @type {number} */ n) => fs.writeSync(last, `${String(n).padStart(15, ' ')}\n`, 0);

let n = /** @type {{ n: number }} */ (db.prepare('SELECT coalesce(max(n), 0) AS n FROM events').get()).n;
report(n);
let commits = 0;
let errors = 0;
let lastError = '';
let maxStallMs = 0;
const checkpoints = { truncated: 0, busy: 0, failed: 0 };

const timer = setInterval(() => {
  const started = Date.now();
  const from = 1 + Math.floor(Math.random() * accounts);
  const to = 1 + Math.floor(Math.random() * accounts);
  let committed = false;
  try {
    commit(n + 1, from, to, 1 + Math.floor(Math.random() * 10));
    n++;
    commits++;
    committed = true;
    report(n);
  } catch (err) {
    errors++;
    lastError = String(/** @type {Error} */ (err).message);
  }
  if (committed && truncateEvery > 0 && commits % truncateEvery === 0) {
    try {
      const [result] = /** @type {{ busy: number }[]} */ (db.pragma('wal_checkpoint(TRUNCATE)'));
      if (result?.busy) checkpoints.busy++;
      else checkpoints.truncated++;
    } catch (err) {
      checkpoints.failed++;
      lastError = String(/** @type {Error} */ (err).message);
    }
  }
  maxStallMs = Math.max(maxStallMs, Date.now() - started);
}, everyMs);

process.stdout.write(`${JSON.stringify({ ready: true, startN: n })}\n`);
process.on('SIGTERM', () => {
  clearInterval(timer);
  db.close();
  fs.closeSync(last);
  process.stdout.write(`${JSON.stringify({ done: true, lastN: n, commits, errors, lastError, maxStallMs, checkpoints })}\n`);
  process.exit(0);
});
