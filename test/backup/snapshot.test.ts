import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrityProblems, snapshot } from '../../src/shared/sqlite/sqlite-ops.js';
import { startApp } from '../helpers/fake-app.js';
import { killAll } from '../helpers/processes.js';
import { ACCOUNTS, INITIAL_BALANCE, balanceSum, createWorkstationDb, integrity } from '../helpers/workstation-db.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-snapshot-'));
});
afterAll(async () => {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha256sum = (file: string) => execFileSync('sha256sum', [file]).toString().split(' ')[0];

function read<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The generations the copy holds: one, for a copy of one transaction's state. */
const generationsIn = (file: string) =>
  read(file, (db) => ({
    stamped: db
      .prepare('SELECT DISTINCT CAST(substr(definition, 12) AS INTEGER) FROM workflows WHERE id % 97 = 0')
      .pluck()
      .all() as number[],
    recorded: db.prepare('SELECT value FROM generation').pluck().get() as number,
  }));

describe('snapshot of a live database', () => {
  it('copies the file of a WAL database frozen by a read transaction while a writer commits and checkpoints after every commit', async () => {
    const live = path.join(dir, 'frozen.db');
    createWorkstationDb(live, { sizeMb: 48 });
    // Each transaction stamps one generation number on rows spread over the whole file, then the
    // application checkpoints at once (PASSIVE, as SQLite's autocheckpoint does), over and over.
    const writer = await startApp(live, {
      busyTimeoutMs: 60_000,
      run: { work: 'generations', everyMs: 0, checkpoint: { mode: 'PASSIVE', every: 1 } },
    });
    await new Promise((r) => setTimeout(r, 200));
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const copy = path.join(dir, `frozen-copy-${i}.db`);
      let ready = false;
      let check: Promise<string[]> | undefined;
      const info = await snapshot(live, copy, 30_000, undefined, () => {
        ready = true;
        check = integrityProblems(copy, 'quick');
      });
      expect(info.method).toBe('file');
      expect(ready).toBe(true);
      expect(await check).toEqual([]);
      // The copy is one transaction's state: the same generation on every stamped row and in its record.
      const { stamped, recorded } = generationsIn(copy);
      expect(stamped).toEqual([recorded]);
      seen.add(recorded);
      expect(integrity(copy)).toBe('ok');
      // A file of its own: rollback journal, no -wal/-shm, private, hashed as it is on disk.
      expect(read(copy, (db) => db.pragma('journal_mode', { simple: true }))).toBe('delete');
      expect(fs.existsSync(`${copy}-wal`)).toBe(false);
      expect(fs.statSync(copy).mode & 0o777).toBe(0o600);
      expect(info.sha256).toBe(sha256sum(copy));
      expect(fs.statSync(copy).size).toBe(info.pageCount * info.pageSize);
    }
    const stats = await writer.stop();
    // The writer carried on through the copies, checkpointing as it went, and the copies saw it move.
    expect(stats.generation).toBeGreaterThan(Math.max(...seen));
    expect(stats.checkpoints.moved).toBeGreaterThan(10);
    expect(seen.size).toBeGreaterThan(1);
  });

  it('falls back to the backup API, and copies the newest state, while another reader keeps frames out of the file', async () => {
    const live = path.join(dir, 'held.db');
    createWorkstationDb(live, { sizeMb: 4 });
    const holder = new Database(live);
    const writer = new Database(live);
    try {
      holder.exec('BEGIN');
      expect(holder.prepare('SELECT count(*) FROM workflows').pluck().get()).toBeGreaterThan(0);
      writer.prepare("INSERT INTO workflows (name, definition, created_at) VALUES ('after-the-reader', 'x', 'now')").run();
      writer.prepare('UPDATE accounts SET balance = balance - 5 WHERE id = 1').run();
      writer.prepare('UPDATE accounts SET balance = balance + 5 WHERE id = 2').run();

      const copy = path.join(dir, 'held-copy.db');
      const info = await snapshot(live, copy, 30_000, undefined, () => undefined);
      expect(info.method).toBe('backup-api');
      expect(read(copy, (db) => db.prepare("SELECT count(*) FROM workflows WHERE name = 'after-the-reader'").pluck().get())).toBe(1);
      expect(balanceSum(copy)).toBe(ACCOUNTS * INITIAL_BALANCE);
      expect(integrity(copy)).toBe('ok');
      expect(info.sha256).toBe(sha256sum(copy));
      // The reader's view was not disturbed.
      expect(holder.prepare("SELECT count(*) FROM workflows WHERE name = 'after-the-reader'").pluck().get()).toBe(0);
      holder.exec('COMMIT');
    } finally {
      holder.close();
      writer.close();
    }
  });

  it('replaces a temp file an earlier run of the same backup left behind', async () => {
    const live = path.join(dir, 'rerun.db');
    createWorkstationDb(live, { sizeMb: 2 });
    const copy = path.join(dir, 'rerun-copy.db');
    fs.writeFileSync(copy, 'half a copy from a run that died'.repeat(1000));
    const info = await snapshot(live, copy, 30_000, undefined, () => undefined);
    expect(info.method).toBe('file');
    expect(balanceSum(copy)).toBe(ACCOUNTS * INITIAL_BALANCE);
    expect(integrity(copy)).toBe('ok');
    expect(info.sha256).toBe(sha256sum(copy));
  });

  it('copies a rollback-journal database with the backup API', async () => {
    const live = path.join(dir, 'journal.db');
    createWorkstationDb(live, { sizeMb: 2, wal: false });
    const copy = path.join(dir, 'journal-copy.db');
    const info = await snapshot(live, copy, 30_000);
    expect(info).toMatchObject({ method: 'backup-api', journalMode: 'delete' });
    expect(balanceSum(copy)).toBe(ACCOUNTS * INITIAL_BALANCE);
    expect(integrity(copy)).toBe('ok');
  });
});
