/**
 * The fake application on better-sqlite3 (the SQLite this repository bundles). fake-app-python/ is
 * the same program on Python's sqlite3 (another SQLite build): keep the two in step. Tests, helpers
 * and the torture harness drive it through test/helpers/fake-app.ts, where the protocol is described;
 * what it commits is in work.mjs.
 *
 * argv: <database> <options as JSON>
 */
import fs from 'node:fs';
import readline from 'node:readline';
import Database from 'better-sqlite3';
import { counts, loadTruth, run, seq, stopRun, transaction } from './work.mjs';

const [file = '', optionsArg = '{}'] = process.argv.slice(2);
/** @type {{ busyTimeoutMs?: number, synchronous?: string, autocheckpoint?: number, lastFile?: string, truth?: { log: string, label: string, scenario: number } }} */
const options = JSON.parse(optionsArg);
const truthLog = options.truth ? fs.openSync(options.truth.log, 'a') : undefined;
const say = (/** @type {object} */ line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const now = () => Date.now();
let autockpt = options.autocheckpoint ?? -1;

/** The connection and what work.mjs needs of the program. @type {import('./work.mjs').App} */
const app = {
  db: /** @type {Database.Database} */ (/** @type {unknown} */ (undefined)),
  options,
  open() {
    const db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
    app.db = db;
    if (String(db.pragma('journal_mode', { simple: true })) !== 'wal') db.pragma('journal_mode = WAL');
    if (autockpt >= 0) db.pragma(`wal_autocheckpoint = ${autockpt}`);
    if (options.synchronous) db.pragma(`synchronous = ${options.synchronous}`);
    if (options.truth) loadTruth(app);
  },
  /** Appends to the truth log (the torture harness's), when there is one. */
  write(entry) {
    if (truthLog === undefined) return;
    fs.writeSync(truthLog, `${JSON.stringify({ ...entry, app: options.truth?.label, sc: options.truth?.scenario })}\n`);
  },
  /** Stops the loop, closes the connection (as an application does), says so with the counts and exits 0. */
  finish(line) {
    stopRun();
    app.db.close();
    say({ ...line, ...counts });
    process.exit(0);
  },
};
const write = app.write;

/** @type {Record<string, (op: any) => object>} */
const ops = {
  tx: (op) => transaction(app, op),
  run: (op) => run(app, op),
  count: (op) => ({ n: Number(app.db.prepare(`SELECT count(*) FROM "${op.table}"`).pluck().get()) }),
  autockpt(op) {
    autockpt = op.pages;
    app.db.pragma(`wal_autocheckpoint = ${op.pages}`);
    return {};
  },
  ckpt(op) {
    const [r] = /** @type {{ busy: number, log: number, checkpointed: number }[]} */ (app.db.pragma(`wal_checkpoint(${op.mode})`));
    return { busy: r?.busy, log: r?.log, checkpointed: r?.checkpointed };
  },
  reopen() {
    app.db.close();
    app.open();
    return {};
  },
  vacuum() {
    app.db.exec('VACUUM');
    return {};
  },
  journal(op) {
    const mode = String(app.db.pragma('journal_mode = DELETE', { simple: true }));
    if (mode !== 'delete') return { refused: mode };
    const at = now();
    write({ event: 'journal-delete', t: at });
    const txs = [];
    try {
      for (let i = 0; i < op.txs; i++) txs.push(transaction(app, { ...op, op: 'tx', jm: 'delete' }).seq);
    } finally {
      app.db.pragma('journal_mode = WAL');
    }
    return { switched: true, at, txs };
  },
  pagesize(op) {
    const mode = String(app.db.pragma('journal_mode = DELETE', { simple: true }));
    if (mode !== 'delete') return { refused: mode };
    const at = now();
    try {
      app.db.pragma(`page_size = ${op.size}`);
      app.db.exec('VACUUM');
    } finally {
      app.db.pragma('journal_mode = WAL');
    }
    write({ event: 'page-size', t: at, size: app.db.pragma('page_size', { simple: true }) });
    return { switched: true, at, size: app.db.pragma('page_size', { simple: true }) };
  },
  replace() {
    const next = `${file}.new`;
    fs.rmSync(next, { force: true });
    app.db.prepare('VACUUM INTO ?').run(next);
    app.db.close();
    const at = now();
    fs.renameSync(next, file);
    fs.rmSync(`${file}-wal`, { force: true });
    fs.rmSync(`${file}-shm`, { force: true });
    app.open();
    write({ event: 'replace', t: at });
    return { replaced: true, at };
  },
  exit: () => app.finish({ ok: true, exiting: true }),
};

app.open();
say({ ready: true, seq, version: app.db.prepare('SELECT sqlite_version()').pluck().get() });
process.on('SIGTERM', () => app.finish({ done: true }));
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const op = JSON.parse(line);
  let answer;
  try {
    // A switch back to WAL that was refused earlier is tried again first.
    if (op.op !== 'exit' && String(app.db.pragma('journal_mode', { simple: true })) !== 'wal') app.db.pragma('journal_mode = WAL');
    const handle = ops[op.op];
    if (!handle) throw new Error(`unknown operation ${op.op}`);
    answer = { ok: true, ...handle(op) };
  } catch (err) {
    answer = { ok: false, error: String(/** @type {Error} */ (err).message) };
    if (op.op === 'tx' || op.op === 'journal') write({ refused: op.op, error: answer.error, t: now() });
  }
  say(answer);
});
lines.on('close', () => app.finish({ done: true }));
