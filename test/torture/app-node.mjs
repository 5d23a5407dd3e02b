/**
 * The torture harness's application, built on better-sqlite3 (the SQLite this repository bundles).
 * It does one operation per line of stdin (JSON, see ops.ts) and answers each with one JSON line on
 * stdout. Every commit is appended to the truth log (argv[3]) before the answer: its sequence number
 * (also stored in `meta` in the same transaction), the time just before COMMIT was issued and just
 * after it returned, and the digest of the `data` table it committed. app-python.py is the same
 * program on Python's sqlite3 (SQLite 3.40.1); keep the two in step.
 *
 * argv: <database> <log file> <build label> <scenario>
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import Database from 'better-sqlite3';

const [file = '', logFile = '', build = '', scenario = '0'] = process.argv.slice(2);
const MASK = (1n << 64n) - 1n;
const BIG_BASE = 1_000_000_000;
const CHUNK = 1 << 20;
const log = fs.openSync(logFile, 'a');
const write = (/** @type {object} */ entry) => fs.writeSync(log, `${JSON.stringify({ ...entry, app: build, sc: Number(scenario) })}\n`);

/** The row's content is a function of (id, v, len): a 32-byte hash repeated. */
function padFor(/** @type {number} */ id, /** @type {number} */ v, /** @type {number} */ len) {
  const seed = createHash('sha256').update(`${id}:${v}`).digest();
  const pad = Buffer.alloc(len);
  if (len) pad.fill(seed);
  return pad;
}
/** The row's hash: the first 8 bytes of sha256("id:v:" + pad), as hex. */
function rowHash(/** @type {number} */ id, /** @type {number} */ v, /** @type {Buffer} */ pad) {
  return createHash('sha256').update(`${id}:${v}:`).update(pad).digest().subarray(0, 8).toString('hex');
}
const hex = (/** @type {bigint} */ d) => d.toString(16).padStart(16, '0');

let db = /** @type {Database.Database} */ (/** @type {unknown} */ (undefined));
let autockpt = -1;
let seq = 0;
let digest = 0n;

function open() {
  db = new Database(file, { timeout: 2000 });
  const mode = String(db.pragma('journal_mode', { simple: true }));
  if (mode !== 'wal') db.pragma('journal_mode = WAL');
  if (autockpt >= 0) db.pragma(`wal_autocheckpoint = ${autockpt}`);
  // As many applications run WAL: commits are not fsynced one by one (more commits per second to archive).
  db.pragma('synchronous = NORMAL');
  seq = Number(db.prepare("SELECT v FROM meta WHERE k = 'seq'").pluck().get());
  digest = 0n;
  for (const h of db.prepare('SELECT h FROM data').pluck().iterate()) digest = (digest + BigInt(`0x${h}`)) & MASK;
}

function now() {
  return Date.now();
}

function sleepSync(/** @type {number} */ ms) {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** One transaction; returns what was committed, or throws (rolled back, nothing logged as committed). */
function transaction(/** @type {any} */ op) {
  const before = digest;
  const started = now();
  db.exec('BEGIN IMMEDIATE');
  try {
    const next = seq + 1;
    let d = digest;
    const maxId = Number(db.prepare(`SELECT coalesce(max(id), 0) FROM data WHERE id < ${BIG_BASE}`).pluck().get());
    const pick = (/** @type {number} */ r, /** @type {number} */ n) =>
      /** @type {{ id: number, h: string }[]} */ (
        db.prepare(`SELECT id, h FROM data WHERE id >= ? AND id < ${BIG_BASE} ORDER BY id LIMIT ?`).all(Math.floor(r * maxId), n)
      );
    const del = db.prepare('DELETE FROM data WHERE id = ?');
    const put = db.prepare('INSERT OR REPLACE INTO data (id, v, pad, h) VALUES (?, ?, ?, ?)');
    const putRow = (/** @type {number} */ id, /** @type {number} */ len) => {
      const pad = padFor(id, next, len);
      const h = rowHash(id, next, pad);
      put.run(id, next, pad, h);
      d = (d + BigInt(`0x${h}`)) & MASK;
    };
    for (const row of pick(op.delAt ?? 0, op.del ?? 0)) {
      del.run(row.id);
      d = (d - BigInt(`0x${row.h}`)) & MASK;
    }
    for (const row of pick(op.updAt ?? 0, op.upd ?? 0)) {
      d = (d - BigInt(`0x${row.h}`)) & MASK;
      putRow(row.id, op.len ?? 100);
    }
    for (let i = 1; i <= (op.ins ?? 0); i++) putRow(maxId + i, op.len ?? 100);
    if (op.big) {
      for (const row of /** @type {{ id: number, h: string }[]} */ (db.prepare(`SELECT id, h FROM data WHERE id >= ${BIG_BASE}`).all())) {
        del.run(row.id);
        d = (d - BigInt(`0x${row.h}`)) & MASK;
      }
      for (let i = 0; i * CHUNK < op.big; i++) putRow(BIG_BASE + next * 100 + i, Math.min(CHUNK, op.big - i * CHUNK));
    }
    db.prepare("UPDATE meta SET v = ? WHERE k = 'seq'").run(next);
    sleepSync(op.holdMs ?? 0);
    const tb = now();
    db.exec('COMMIT');
    const ta = now();
    seq = next;
    digest = d;
    write({ seq, tb, ta, d: hex(d), op: op.op, jm: op.jm });
    return { committed: true, seq, ms: ta - started };
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    digest = before;
    // A COMMIT that threw after all? The stored sequence number tells.
    const stored = Number(db.prepare("SELECT v FROM meta WHERE k = 'seq'").pluck().get());
    if (stored !== seq) {
      open();
      write({ seq, tb: started, ta: now(), d: hex(digest), op: op.op, recovered: true });
      return { committed: true, seq };
    }
    throw err;
  }
}

/** @type {Record<string, (op: any) => any>} */
const ops = {
  tx: (op) => transaction(op),
  autockpt(op) {
    autockpt = op.pages;
    db.pragma(`wal_autocheckpoint = ${op.pages}`);
    return {};
  },
  ckpt(op) {
    const [r] = /** @type {{ busy: number, log: number, checkpointed: number }[]} */ (db.pragma(`wal_checkpoint(${op.mode})`));
    return { busy: r?.busy, log: r?.log, checkpointed: r?.checkpointed };
  },
  reopen() {
    db.close();
    open();
    return {};
  },
  vacuum() {
    db.exec('VACUUM');
    return {};
  },
  journal(op) {
    const mode = String(db.pragma('journal_mode = DELETE', { simple: true }));
    if (mode !== 'delete') return { refused: mode };
    const at = now();
    write({ event: 'journal-delete', t: at });
    const txs = [];
    try {
      for (let i = 0; i < op.txs; i++) txs.push(transaction({ ...op, op: 'tx', jm: 'delete' }).seq);
    } finally {
      db.pragma('journal_mode = WAL');
    }
    return { switched: true, at, txs };
  },
  pagesize(op) {
    const mode = String(db.pragma('journal_mode = DELETE', { simple: true }));
    if (mode !== 'delete') return { refused: mode };
    const at = now();
    try {
      db.pragma(`page_size = ${op.size}`);
      db.exec('VACUUM');
    } finally {
      db.pragma('journal_mode = WAL');
    }
    write({ event: 'page-size', t: at, size: db.pragma('page_size', { simple: true }) });
    return { switched: true, at, size: db.pragma('page_size', { simple: true }) };
  },
  replace() {
    const next = `${file}.new`;
    fs.rmSync(next, { force: true });
    db.prepare('VACUUM INTO ?').run(next);
    db.close();
    const at = now();
    fs.renameSync(next, file);
    fs.rmSync(`${file}-wal`, { force: true });
    fs.rmSync(`${file}-shm`, { force: true });
    open();
    write({ event: 'replace', t: at });
    return { replaced: true, at };
  },
  exit() {
    db.close();
    return { exiting: true };
  },
};

open();
process.stdout.write(`${JSON.stringify({ ready: true, seq, version: db.prepare('SELECT sqlite_version()').pluck().get() })}\n`);
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const op = JSON.parse(line);
  let answer;
  try {
    // A switch back to WAL that was refused earlier is tried again first.
    if (op.op !== 'exit' && String(db.pragma('journal_mode', { simple: true })) !== 'wal') db.pragma('journal_mode = WAL');
    const run = ops[op.op];
    if (!run) throw new Error(`unknown operation ${op.op}`);
    answer = { ok: true, ...run(op) };
  } catch (err) {
    answer = { ok: false, error: String(/** @type {Error} */ (err).message) };
    if (op.op === 'tx' || op.op === 'journal') write({ refused: op.op, error: answer.error, t: now() });
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (op.op === 'exit') process.exit(0);
});
lines.on('close', () => {
  db.close();
  process.exit(0);
});
