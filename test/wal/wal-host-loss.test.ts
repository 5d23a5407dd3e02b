/**
 * Losing the whole host loses seconds (issue 22). The service archives a database the application
 * writes every 5 ms, with the bucket as its mirror; then the worker and the application are killed
 * at once (SIGKILL), BACKUP_DIR (catalog included) and the database are deleted, and Redis is
 * unreachable. From the configuration and the bucket alone, the CLI restores to the latest moment
 * (every commit older than 3 s before the kill is there, the state is one the application
 * committed, integrity_check passes) and to a random moment of the window `window` shows (exactly
 * the commits of a moment no later than it). Plain, and compressed and encrypted; on s3rver and on
 * a second S3 implementation (fauxqs).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { waitUntil } from '../helpers/env.js';
import { S3Server } from '../helpers/s3.js';
import { BALANCE_TOTAL, deleteDatabase, stateOf, startWalWriter } from '../helpers/wal-writer.js';
import { startWalStack, stopWalStack, type WalStack } from '../helpers/wal-stack.js';

/** The promise: commits this much older than the loss are in the bucket. */
const RPO_MS = 3_000;

let s3: S3Server;
let alt: S3Server;
beforeAll(async () => {
  [s3, alt] = await Promise.all([S3Server.start(), S3Server.start({ kind: 'fauxqs' })]);
});
afterAll(async () => {
  await s3?.cleanup();
  await alt?.cleanup();
});

/** Every committed event of the database as the application left it: n and the time it was written. */
function committedEvents(file: string): { n: number; at: number }[] {
  const copy = `${file}.evidence`;
  for (const suffix of ['', '-wal']) if (fs.existsSync(file + suffix)) fs.copyFileSync(file + suffix, copy + suffix);
  const db = new Database(copy, { readonly: true });
  try {
    return (db.prepare('SELECT n, at FROM events ORDER BY n').all() as { n: number; at: string }[]).map((e) => ({
      n: e.n,
      at: Date.parse(e.at),
    }));
  } finally {
    db.close();
  }
}

async function loseTheHost(
  name: string,
  bucket: { env(prefix: string): Record<string, string> },
  extra: Record<string, string>,
): Promise<void> {
  const prefix = `hosts/${name}`;
  let stack: WalStack | undefined = await startWalStack(name, 1_000, { ...bucket.env(prefix), ...extra });
  const { box, catalog } = stack;
  try {
    const db = box.config.databasePath;
    const writer = await startWalWriter(db, { everyMs: 5 });
    // The snapshot is in the bucket and packs are flowing: the steady state.
    await waitUntil(
      'a generation whose snapshot and segments are in the bucket',
      () => {
        const g = catalog.wal.openGeneration();
        if (!g?.snapshot_backup_id) return false;
        const mirrored = catalog.copies('mirror').some((c) => c.backup_id === g.snapshot_backup_id && c.status === 'ok');
        return mirrored && catalog.walBucket.packs(g.id).length >= 3;
      },
      60_000,
    );
    await new Promise((r) => setTimeout(r, 4_000));

    // The host is lost: every process at once, then its disk.
    const lostAt = Date.now();
    await Promise.all([writer.kill(), stack.worker.kill()]);
    const committed = committedEvents(db);
    expect(committed.length).toBeGreaterThan(500);
    const env = { ...box.env, ...bucket.env(prefix), ...extra, REDIS_URL: REDIS_DOWN };
    await stopWalStack({ ...stack, box: undefined });
    stack = undefined;
    fs.rmSync(box.config.backupDir, { recursive: true, force: true });
    deleteDatabase(db);

    // Latest: every commit older than RPO_MS before the loss, and a state the application committed.
    const restore = await runCli(env, 'restore', '--to', 'latest', '--yes', '--json');
    expect(restore.code, restore.stdout + restore.stderr).toBe(0);
    const state = stateOf(db);
    expect(state.integrity).toBe('ok');
    expect(state.balanceSum).toBe(BALANCE_TOTAL);
    expect(state.events.contiguous).toBe(true);
    const mustHave = committed.filter((e) => e.at <= lostAt - RPO_MS).at(-1)!.n;
    expect(
      state.events.max,
      `restored to ${restore.json.wal?.restoredTo}, lost at ${new Date(lostAt).toISOString()}`,
    ).toBeGreaterThanOrEqual(mustHave);
    expect(state.events.max).toBeLessThanOrEqual(committed.at(-1)!.n);

    // A random moment of the window, read from the bucket alone, to a file of its own.
    const window = await runCli(env, 'window', '--json');
    expect(window.code, window.stdout + window.stderr).toBe(0);
    const earliest = Date.parse(window.json.earliest as string);
    const latest = Date.parse(window.json.latest as string);
    expect(latest).toBeGreaterThan(earliest);
    const target = new Date(earliest + Math.random() * (latest - earliest));
    const output = `${box.dir}/moment.db`;
    const moment = await runCli(env, 'restore', '--to', target.toISOString(), '--output', output, '--yes', '--json');
    expect(moment.code, moment.stdout + moment.stderr).toBe(0);
    const past = stateOf(output);
    expect(past.integrity).toBe('ok');
    expect(past.balanceSum).toBe(BALANCE_TOTAL);
    expect(past.events.contiguous).toBe(true);
    // Nothing after the moment, and nothing the archive held from before its last sync at or before it.
    const atMoment = committed.filter((e) => e.at <= target.getTime());
    expect(past.events.max).toBeLessThanOrEqual(atMoment.at(-1)?.n ?? 0);
    expect(past.events.max).toBeGreaterThanOrEqual(committed.filter((e) => e.at <= target.getTime() - RPO_MS).at(-1)?.n ?? 0);

    // --from: the same bucket named on the command line, read alone by a host configured for another mirror.
    const { BACKUP_MIRROR_URL: from } = bucket.env(prefix);
    const elsewhere = { ...env, BACKUP_MIRROR_URL: `${from}-elsewhere` };
    const fromWindow = await runCli(elsewhere, 'window', '--from', from!, '--json');
    expect(fromWindow.code, fromWindow.stdout + fromWindow.stderr).toBe(0);
    expect([fromWindow.json.earliest, fromWindow.json.latest]).toEqual([window.json.earliest, window.json.latest]);
    const fromFile = `${box.dir}/from.db`;
    const fromLatest = await runCli(elsewhere, 'restore', '--to', 'latest', '--from', from!, '--output', fromFile, '--json');
    expect(fromLatest.code, fromLatest.stdout + fromLatest.stderr).toBe(0);
    expect(stateOf(fromFile)).toEqual(state);
    expect((await runCli(elsewhere, 'restore', '--to', 'latest', '--from', from!, '--yes')).code).toBe(2);
  } finally {
    if (stack) await stopWalStack({ ...stack, box: undefined });
    await box.cleanup();
  }
}

describe('the host is lost: the bucket alone restores', () => {
  const crypt = () => ({ BACKUP_COMPRESSION: 'zstd', BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64') });

  it('to latest and to a moment, plain (s3rver)', async () => {
    await loseTheHost('wal-hostloss', s3, {});
  });

  it('to latest and to a moment, compressed and encrypted (s3rver)', async () => {
    await loseTheHost('wal-hostloss-crypt', s3, crypt());
  });

  it('to latest and to a moment, compressed and encrypted, on a second S3 implementation (fauxqs)', async () => {
    await loseTheHost('wal-hostloss-alt', alt, crypt());
  });
});
