/**
 * What the fake application commits (fake-app-node/main.mjs runs it): the torture's transaction on
 * `data`, each commit appended to the truth log, and the `run` loop's transactions at an interval.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

/**
 * @typedef {{ db: import('better-sqlite3').Database, options: { lastFile?: string, truth?: object }, open(): void, write(entry: object): void, finish(line: object): never }} App
 */

const MASK = (1n << 64n) - 1n;
const BIG_BASE = 1_000_000_000;
const CHUNK = 1 << 20;
const now = () => Date.now();
export const sleepSync = (/** @type {number} */ ms) => ms > 0 && Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** A `data` row's content is a function of (id, v, len): a 32-byte hash repeated; its hash the first 8 bytes of sha256("id:v:" + pad). */
function padFor(/** @type {number} */ id, /** @type {number} */ v, /** @type {number} */ len) {
  const pad = Buffer.alloc(len);
  if (len) pad.fill(createHash('sha256').update(`${id}:${v}`).digest());
  return pad;
}
const rowHash = (/** @type {number} */ id, /** @type {number} */ v, /** @type {Buffer} */ pad) =>
  createHash('sha256').update(`${id}:${v}:`).update(pad).digest().subarray(0, 8).toString('hex');
const hex = (/** @type {bigint} */ d) => d.toString(16).padStart(16, '0');

/** The torture's state: the last sequence number committed and the digest of `data`. */
export let seq = 0;
let digest = 0n;

/** Reads the torture's state from the database (on every open). */
export function loadTruth(/** @type {App} */ { db }) {
  seq = Number(db.prepare("SELECT v FROM meta WHERE k = 'seq'").pluck().get());
  digest = 0n;
  for (const h of db.prepare('SELECT h FROM data').pluck().iterate()) digest = (digest + BigInt(`0x${h}`)) & MASK;
}

/** One torture transaction; returns what was committed, or throws (rolled back, nothing logged as committed). */
export function transaction(/** @type {App} */ app, /** @type {any} */ op) {
  const { db, write } = app;
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
      app.open();
      write({ seq, tb: started, ta: now(), d: hex(digest), op: op.op, recovered: true });
      return { committed: true, seq };
    }
    throw err;
  }
}

/** Writes the last event n committed in place, so that a SIGKILL leaves the truth on disk. */
let lastFile = /** @type {number | undefined} */ (undefined);
/** Writes the last event n committed in place, so that a SIGKILL leaves the truth on disk. */
const report = () => lastFile !== undefined && fs.writeSync(lastFile, `${String(counts.lastN).padStart(15, ' ')}\n`, 0);

/** What `run` did so far: the counts every stop reports. */
export const counts = {
  lastN: 0,
  commits: 0,
  errors: 0,
  lastError: '',
  maxStallMs: 0,
  generation: 0,
  checkpoints: { done: 0, busy: 0, failed: 0, moved: 0 },
};
/** Stops the `run` loop, if one runs. */
export let stopRun = () => {};

const countOf = (/** @type {import('better-sqlite3').Database} */ db, /** @type {string} */ sql) => Number(db.prepare(sql).pluck().get());

/** The `run` loop's transactions, by `work`: each gives the step that writes one and returns what to count once it committed. */
const WORK = {
  events(/** @type {import('better-sqlite3').Database} */ db) {
    db.exec('CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, at TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO events (n, at) VALUES (?, ?)');
    const transfer = WORK.transfers(db);
    counts.lastN = countOf(db, 'SELECT coalesce(max(n), 0) FROM events');
    return () => {
      insert.run(counts.lastN + 1, new Date().toISOString());
      transfer();
      return () => counts.lastN++;
    };
  },
  transfers(/** @type {import('better-sqlite3').Database} */ db) {
    const accounts = countOf(db, 'SELECT count(*) FROM accounts');
    const debit = db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?');
    const credit = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
    const account = () => 1 + Math.floor(Math.random() * accounts);
    return () => {
      const amount = 1 + Math.floor(Math.random() * 10);
      debit.run(amount, account());
      credit.run(amount, account());
      return () => undefined;
    };
  },
  generations(/** @type {import('better-sqlite3').Database} */ db) {
    db.exec('CREATE TABLE IF NOT EXISTS generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)');
    db.exec('INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0)');
    const stamp = db.prepare("UPDATE workflows SET definition = 'generation ' || ? || ' ' || substr(definition, -200) WHERE id % 97 = 0");
    const bump = db.prepare('UPDATE generation SET value = ?');
    counts.generation = countOf(db, 'SELECT value FROM generation');
    return () => {
      stamp.run(counts.generation + 1);
      bump.run(counts.generation + 1);
      return () => counts.generation++;
    };
  },
};

function checkpoint(/** @type {import('better-sqlite3').Database} */ db, /** @type {string} */ mode) {
  try {
    const [r] = /** @type {{ busy: number, checkpointed: number }[]} */ (db.pragma(`wal_checkpoint(${mode})`));
    if (r?.busy) counts.checkpoints.busy++;
    else counts.checkpoints.done++;
    if (r && r.checkpointed > 0) counts.checkpoints.moved++;
  } catch (err) {
    counts.checkpoints.failed++;
    counts.lastError = String(/** @type {Error} */ (err).message);
  }
}

/** Commits one `work` transaction every `everyMs` (0: as fast as it can) until stopped, or for `seconds` and then finishes. */
export function run(/** @type {App} */ app, /** @type {any} */ op) {
  if (op.work in WORK === false) throw new Error(`unknown work ${op.work}`);
  const step = WORK[/** @type {keyof typeof WORK} */ (op.work)](app.db);
  const { mode = 'TRUNCATE', every = 0, afterHold = false } = op.checkpoint ?? {};
  if (app.options.lastFile && lastFile === undefined) lastFile = fs.openSync(app.options.lastFile, 'w');
  report();
  let stopped = false;
  const tick = () => {
    const { db } = app;
    const started = now();
    const held = op.holdEvery > 0 && (counts.commits + 1) % op.holdEvery === 0;
    let committed = false;
    try {
      db.exec('BEGIN IMMEDIATE');
      const done = step();
      sleepSync(held ? op.holdMs : 0);
      db.exec('COMMIT');
      done();
      counts.commits++;
      committed = true;
      report();
    } catch (err) {
      counts.errors++;
      counts.lastError = String(/** @type {Error} */ (err).message);
      if (db.inTransaction) db.exec('ROLLBACK');
    }
    if ((committed && every > 0 && counts.commits % every === 0) || (held && afterHold)) checkpoint(db, mode);
    counts.maxStallMs = Math.max(counts.maxStallMs, now() - started);
  };
  const everyMs = op.everyMs ?? 5;
  const timer = everyMs > 0 ? setInterval(tick, everyMs) : undefined;
  const spin = () => !stopped && (tick(), setImmediate(spin));
  if (!timer) setImmediate(spin);
  const deadline = op.seconds > 0 ? setTimeout(() => app.finish({ done: true }), op.seconds * 1000) : undefined;
  stopRun = () => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(deadline);
  };
  return { startN: counts.lastN };
}
