/**
 * A stand-in for the application: holds the database open in WAL mode and commits a transfer
 * between two accounts every few milliseconds (the balance sum never changes), until SIGTERM.
 * Prints one JSON line when ready and one with its counts when it stops.
 */
import Database from 'better-sqlite3';

const [file, everyMsArg] = process.argv.slice(2);
const everyMs = Number(everyMsArg ?? 5);
const db = new Database(file!);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 60000');
const transfer = db.transaction((from: number, to: number, amount: number) => {
  db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?').run(amount, from);
  db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?').run(amount, to);
});
let commits = 0;
let errors = 0;
let lastError = '';
let maxStallMs = 0;
const timer = setInterval(() => {
  const from = 1 + Math.floor(Math.random() * 100);
  const to = 1 + Math.floor(Math.random() * 100);
  const started = Date.now();
  try {
    transfer(from, to, 1 + Math.floor(Math.random() * 10));
    commits++;
  } catch (err) {
    errors++;
    lastError = (err as Error).message;
  }
  maxStallMs = Math.max(maxStallMs, Date.now() - started);
}, everyMs);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.on('SIGTERM', () => {
  clearInterval(timer);
  // What this long-lived connection sees now, e.g. after a restore underneath it.
  const workflows = (db.prepare('SELECT count(*) AS n FROM workflows').get() as { n: number }).n;
  db.close();
  process.stdout.write(`${JSON.stringify({ commits, errors, lastError, maxStallMs, workflows })}\n`);
  process.exit(0);
});
