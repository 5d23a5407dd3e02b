/**
 * The long-lived SQLite connection (shared/sqlite/connection.ts): a real thread, real WAL files.
 * What the WAL archiver will rely on: a read transaction it holds keeps a concurrent writer's WAL
 * from being checkpointed past it, until it lets go.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteConnection } from '../../src/shared/sqlite/connection.js';

let dir: string;
let file: string;
let writer: Database.Database;
const open: SqliteConnection[] = [];

const walSize = () => fs.statSync(`${file}-wal`).size;
const rowCount = () => (writer.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
const checkpoint = () => (writer.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[])[0]!;
const write = (rows: number) =>
  writer.transaction(() => {
    const insert = writer.prepare('INSERT INTO events (data) VALUES (randomblob(1024))');
    for (let i = 0; i < rows; i++) insert.run();
  })();

async function connect(options?: Parameters<typeof SqliteConnection.open>[1]): Promise<SqliteConnection> {
  const connection = await SqliteConnection.open(file, options);
  open.push(connection);
  return connection;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-sqlite-connection-'));
  file = path.join(dir, 'live.db');
  writer = new Database(file);
  writer.pragma('journal_mode = WAL');
  // Only the test checkpoints, so what the WAL holds is what the test put there.
  writer.pragma('wal_autocheckpoint = 0');
  // A checkpoint blocked by a reader answers busy at once instead of waiting for it.
  writer.pragma('busy_timeout = 0');
  writer.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

afterAll(() => {
  writer?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a long-lived SQLite connection', () => {
  it('holds a read transaction that keeps the WAL from being checkpointed past it, until released', async () => {
    write(100);
    const reader = await connect({ readonly: true });
    await reader.beginRead();
    const seen = rowCount();

    // A writer goes on while the read transaction is held: its frames go to the WAL.
    write(1_000);
    const grown = walSize();
    expect(grown).toBeGreaterThan(1_000 * 1024);
    const held = checkpoint();
    expect(held.busy).toBe(1);
    expect(walSize()).toBeGreaterThanOrEqual(grown);
    // Later requests on the same connection still read the snapshot of beginRead.
    expect(await reader.all<{ n: number }>('SELECT count(*) AS n FROM events')).toEqual([{ n: seen }]);

    // Some time later, still held: nothing has moved.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(checkpoint().busy).toBe(1);
    expect(walSize()).toBeGreaterThanOrEqual(grown);

    await reader.endRead();
    const released = checkpoint();
    expect(released.busy).toBe(0);
    expect(walSize()).toBe(0);
    expect(await reader.all<{ n: number }>('SELECT count(*) AS n FROM events')).toEqual([{ n: seen + 1_000 }]);
  });

  it('runs statements in order and answers SQLite errors with their codes, without dying', async () => {
    const conn = await connect();
    const changed = await conn.run('INSERT INTO events (data) VALUES (?)', [Buffer.from('x')]);
    expect(changed).toMatchObject({ changes: 1 });
    await expect(conn.run('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: 'SQLITE_ERROR' });
    await expect(conn.endRead()).resolves.toBeUndefined();
    await conn.beginRead();
    await expect(conn.beginRead()).rejects.toMatchObject({ code: 'IN_TRANSACTION' });
    await conn.endRead();
    expect((await conn.all<{ n: number }>('SELECT count(*) AS n FROM events'))[0]!.n).toBe(rowCount());
  });

  it('refuses a missing file at open, and every request once closed', async () => {
    await expect(SqliteConnection.open(path.join(dir, 'missing.db'))).rejects.toMatchObject({ code: 'SQLITE_CANTOPEN' });
    const conn = await connect();
    await conn.beginRead();
    await conn.close();
    await conn.close();
    await expect(conn.run('SELECT 1')).rejects.toThrow(/closed/);
    // Closing released the read transaction it held.
    write(10);
    expect(checkpoint().busy).toBe(0);
  });
});
