/**
 * The application, as far as the benchmark needs it: a separate process that holds the database
 * open (WAL, busy_timeout 60 s, default synchronous) and commits a small transaction every few
 * milliseconds, timing each commit. The parent asks for the latencies of a window over IPC.
 */
import Database from 'better-sqlite3';

const [file, everyMsArg] = process.argv.slice(2);
const everyMs = Number(everyMsArg ?? 5);
const db = new Database(file!);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 60000');
const debit = db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?');
const credit = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const audit = db.prepare('INSERT INTO audit_log (user_id, action, entity, detail, at) VALUES (?, ?, ?, ?, ?)');
const accounts = Number((db.prepare('SELECT count(*) AS n FROM accounts').get() as { n: number }).n);
const transfer = db.transaction((from: number, to: number, amount: number) => {
  debit.run(amount, from);
  credit.run(amount, to);
  audit.run(from, 'transfer', `account:${to}`, `{"amount":${amount}}`, new Date().toISOString());
});

let latencies: number[] = [];
let errors = 0;
let lastError = '';
let busy = false;

const tick = () => {
  // A commit that outlasts the interval is one long sample, not a pile-up of queued ones.
  if (busy) return;
  busy = true;
  const from = 1 + Math.floor(Math.random() * accounts);
  const to = 1 + Math.floor(Math.random() * accounts);
  const start = process.hrtime.bigint();
  try {
    transfer(from, to, 1 + Math.floor(Math.random() * 10));
  } catch (err) {
    errors++;
    lastError = (err as Error).message;
  }
  latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  busy = false;
};
const timer = setInterval(tick, everyMs);

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'mark') {
    latencies = [];
    errors = 0;
  } else if (msg.type === 'take') {
    process.send!({ type: 'samples', latencies, errors, lastError });
    latencies = [];
    errors = 0;
  } else if (msg.type === 'stop') {
    clearInterval(timer);
    db.close();
    process.exit(0);
  }
});
process.send!({ type: 'ready' });
