/**
 * The WAL archive's tests: the application writing while archived (the fake application), what a
 * database holds afterwards, and checks of what the archive recorded (the chain, the segment
 * files, the gaps announced).
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import type { WalGenerationRow, WalSegmentRow } from '../../src/shared/catalog/catalog-schema.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { readSegment } from '../../src/shared/wal/pack-reader.js';
import { waitUntil } from './env.js';
import { lastFileFor, startApp, type AppOptions, type FakeApp, type RunOptions } from './fake-app.js';
import type { WebhookReceiver } from './webhook.js';
import { ACCOUNTS, INITIAL_BALANCE } from './workstation-db.js';

/** Adds the `events` table the writer fills (before archiving starts, so the snapshot has it). */
export function addEventsTable(file: string): void {
  const db = new Database(file);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, at TEXT NOT NULL)');
  } finally {
    db.close();
  }
}

/**
 * The application writing events while the archive reads its WAL: the fake application (fake-app.ts,
 * `node` unless `build` says otherwise) committing `events` every `everyMs` (5 by default), its last
 * committed n in a file of its own; resolves once it writes.
 */
export function startWalWriter(
  file: string,
  options: Pick<AppOptions, 'build' | 'busyTimeoutMs' | 'autocheckpoint'> & Omit<RunOptions, 'work'> = {},
): Promise<WalWriter> {
  const { build, busyTimeoutMs, autocheckpoint, ...run } = options;
  return startApp(file, { build, busyTimeoutMs, autocheckpoint, lastFile: lastFileFor(file), run: { work: 'events', everyMs: 5, ...run } });
}

export type WalWriter = FakeApp;

/** The events in a database file: how many, the largest n, and whether they are exactly 1..max. */
export function eventsOf(file: string): { count: number; max: number; contiguous: boolean } {
  const db = new Database(file, { readonly: true });
  try {
    const { count, max } = db.prepare('SELECT count(*) AS count, coalesce(max(n), 0) AS max FROM events').get() as {
      count: number;
      max: number;
    };
    const min = (db.prepare('SELECT coalesce(min(n), 1) AS min FROM events').get() as { min: number }).min;
    return { count, max, contiguous: count === max && min === 1 };
  } finally {
    db.close();
  }
}

/** Everything a restored database must show: its events, the balance sum, integrity_check. */
export function stateOf(file: string): { events: ReturnType<typeof eventsOf>; balanceSum: number; integrity: string } {
  const db = new Database(file, { readonly: true });
  try {
    const balanceSum = (db.prepare('SELECT sum(balance) AS s FROM accounts').get() as { s: number }).s;
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    return { events: eventsOf(file), balanceSum, integrity };
  } finally {
    db.close();
  }
}

export const BALANCE_TOTAL = ACCOUNTS * INITIAL_BALANCE;

/** Deletes the database and its `-wal` and `-shm` files: the disaster. */
export function deleteDatabase(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
}

/**
 * Waits until the archive's open generation (newer than `after`, when given) has its snapshot and
 * at least `segments` segments: archiving is under way and a restore to latest has something to
 * replay. Returns that generation.
 */
export function archivingUnderWay(catalog: Catalog, { after = 0, segments = 3, timeoutMs = 45_000 } = {}): Promise<WalGenerationRow> {
  return waitUntil(
    `an open WAL generation after ${after} with its snapshot and ${segments} segments`,
    () => {
      const g = catalog.wal.openGeneration();
      return g && g.id > after && g.snapshot_backup_id !== null && catalog.wal.segments(g.id).length >= segments ? g : undefined;
    },
    timeoutMs,
  );
}

/**
 * The chain has no silent gap: in each generation the segments' sequences run 1, 2, 3… and each
 * segment begins where the one before it ended (same salts, offset and checksum), or at the top
 * of a WAL restarted once (salt-1 one more, offset 32); no segment file name is recorded twice. Returns
 * the problems found (empty when none).
 */
export function chainProblems(catalog: Catalog): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const g of catalog.wal.generations()) {
    let previous: WalSegmentRow | undefined;
    for (const [i, s] of catalog.wal.segments(g.id).entries()) {
      if (names.has(s.file_name)) problems.push(`${s.file_name} is recorded twice`);
      names.add(s.file_name);
      if (s.seq !== i + 1) problems.push(`generation ${g.id}: segment ${i + 1} has sequence ${s.seq}`);
      if (s.commits < 1) problems.push(`${s.file_name} holds no commit`);
      if (!previous) {
        const atStart =
          g.start_offset === null
            ? s.first_offset === 32
            : s.first_offset === g.start_offset && s.salt1 === g.start_salt1 && s.start_checksum0 === g.start_checksum0;
        const afresh = s.first_offset === 32 && g.start_salt1 !== null && s.salt1 === (g.start_salt1 + 1) >>> 0;
        if (!atStart && !afresh)
          problems.push(`generation ${g.id}: its first segment ${s.file_name} begins at ${s.first_offset}, not where it began`);
      } else {
        const continues =
          s.salt1 === previous.salt1 &&
          s.salt2 === previous.salt2 &&
          s.first_offset === previous.last_offset &&
          s.start_checksum0 === previous.end_checksum0 &&
          s.start_checksum1 === previous.end_checksum1;
        // The top of a WAL restarted once: salt-1 goes up by exactly one per restart.
        const afresh = s.first_offset === 32 && s.salt1 === (previous.salt1 + 1) >>> 0;
        if (!continues && !afresh) {
          problems.push(
            `generation ${g.id}: ${s.file_name} (salts ${s.salt1}/${s.salt2} from ${s.first_offset}) does not follow ${previous.file_name} (salts ${previous.salt1}/${previous.salt2} to ${previous.last_offset})`,
          );
        }
      }
      previous = s;
    }
  }
  return problems;
}

/** Generations begun after `after` that no `wal.gap` alert announced (with their reason); a rollover is no gap. */
export function unannouncedGenerations(catalog: Catalog, hooks: WebhookReceiver, after: number): string[] {
  const reasons = hooks.of('wal.gap').map((d) => d.body.reason);
  return catalog.wal
    .generations()
    .filter((g) => g.id > after && !g.reason.startsWith('rollover') && !reasons.includes(g.reason))
    .map((g) => `generation ${g.id}: ${g.reason}`);
}

/** Recorded segments whose file is not whole: its SHA-256, decoding or WAL checksum chain fails (primary, then mirror). */
export async function unreadableSegments(config: Config, catalog: Catalog): Promise<string[]> {
  const problems: string[] = [];
  for (const g of catalog.wal.generations()) {
    for (const s of catalog.wal.segments(g.id)) {
      const read = await readSegment(config, s, catalog);
      if (!read.ok) problems.push(read.problem);
    }
  }
  return problems;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
