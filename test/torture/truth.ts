/**
 * The truth: the application's log of every commit, and what a database file holds, computed
 * the way the application computes it (test/helpers/fake-app-node/work.mjs, fake-app-python/work.py).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { FakeApp, type Build } from '../helpers/fake-app.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

/** One committed transaction as the application logged it. */
export interface Commit {
  seq: number;
  /** Wall-clock ms just before COMMIT was issued, and just after it returned. */
  tb: number;
  ta: number;
  /** The digest of the `data` table it committed (hex, 64 bits). */
  d: string;
  app: string;
  /** The scenario it was committed in. */
  sc: number;
  op: string;
  /** `delete` for a commit made while the application had switched to journal_mode=DELETE. */
  jm?: string;
  recovered?: boolean;
}

/** Something the application did that the archive cannot follow without a gap. */
export interface GapEvent {
  event: 'replace' | 'journal-delete' | 'page-size';
  t: number;
  app: string;
  sc: number;
}

export interface TruthLog {
  commits: Commit[];
  bySeq: Map<number, Commit>;
  events: GapEvent[];
  refused: number;
}

const MASK = (1n << 64n) - 1n;

export function readTruth(file: string): TruthLog {
  const commits: Commit[] = [];
  const events: GapEvent[] = [];
  let refused = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as Partial<Commit & GapEvent & { refused: string }>;
    if (typeof entry.seq === 'number') commits.push(entry as Commit);
    else if (entry.event) events.push(entry as GapEvent);
    else if (entry.refused) refused++;
  }
  commits.sort((a, b) => a.seq - b.seq);
  return { commits, bySeq: new Map(commits.map((c) => [c.seq, c])), events, refused };
}

/** The application's database before it first runs (the Workstation tables, `data`, `meta`), logged as commit 0. */
export function prepareDatabase(file: string, logFile: string): Commit {
  createWorkstationDb(file, { sizeMb: 1 });
  const db = new Database(file);
  try {
    db.exec(`
      CREATE TABLE data (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB NOT NULL, h TEXT NOT NULL);
      CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
      INSERT INTO meta (k, v) VALUES ('seq', 0);
    `);
  } finally {
    db.close();
  }
  const now = Date.now();
  const zero: Commit = { seq: 0, tb: now, ta: now, d: '0'.repeat(16), app: 'harness', sc: 0, op: 'create' };
  fs.writeFileSync(logFile, `${JSON.stringify(zero)}\n`);
  return zero;
}

/** A row's hash as the application computes it: the first 8 bytes of sha256("id:v:" + pad). */
export function rowHash(id: number, v: number, pad: Buffer): bigint {
  return createHash('sha256').update(`${id}:${v}:`).update(pad).digest().readBigUInt64BE(0);
}

/** What a (restored) database file holds: integrity_check, its sequence number and the digest recomputed from its rows. */
export interface FileState {
  integrity: string;
  seq: number | null;
  digest: string | null;
  rows: number;
  pageSize: number;
  /** Why it could not be read at all. */
  error?: string;
}

export function inspect(file: string): FileState {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    const seq = db.prepare("SELECT v FROM meta WHERE k = 'seq'").pluck().get() as number | undefined;
    let digest = 0n;
    let rows = 0;
    for (const row of db.prepare('SELECT id, v, pad FROM data').iterate() as Iterable<{ id: number; v: number; pad: Buffer }>) {
      digest = (digest + rowHash(row.id, row.v, row.pad)) & MASK;
      rows++;
    }
    return { integrity, seq: seq ?? null, digest: digest.toString(16).padStart(16, '0'), rows, pageSize };
  } catch (err) {
    return { integrity: 'unreadable', seq: null, digest: null, rows: 0, pageSize: 0, error: (err as Error).message };
  } finally {
    db?.close();
  }
}

/**
 * The fake application as the harness runs it: every commit in the truth log, labelled with its
 * build and scenario; a 2 s busy timeout, and commits not fsynced one by one (synchronous=NORMAL, as
 * many WAL applications run: more commits a second to archive).
 */
export function tortureApp(build: Build, file: string, log: string, scenario: number): FakeApp {
  return new FakeApp(file, { build, busyTimeoutMs: 2_000, synchronous: 'NORMAL', truth: { log, label: build, scenario } });
}
