import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { UnrecoverableError } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { cliFailure } from '../../src/cli/context.js';
import { AppError, KeyError, NotWalMode, codeOf, isTransient, permanentFailure } from '../../src/shared/domain/errors.js';
import { keyringOf } from '../../src/shared/codec/encryption.js';
import { cancelledError, isCancelled } from '../../src/shared/jobs/cancel.js';
import { FileLockUnavailable, tryFileLock } from '../../src/shared/locking/file-lock.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { SqliteOpError } from '../../src/shared/sqlite/sqlite-ops.js';
import { explainS3Error } from '../../src/shared/storage/s3-errors.js';
import { classify } from '../../src/worker/context.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-error-shape-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What a thrown value's `code` was read as before codeOf: the property itself, when a string. */
function ownStringCode(err: unknown): string | undefined {
  const code: unknown = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return typeof code === 'string' ? code : undefined;
}

const withCode = (message: string, code: unknown, cause?: unknown) =>
  Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code });

async function nodeError(): Promise<unknown> {
  return fsp.readFile(path.join(dir, 'missing')).catch((err: unknown) => err);
}

function sqliteError(): unknown {
  const file = path.join(dir, 'not-a-database.db');
  fs.writeFileSync(file, Buffer.alloc(4096, 7));
  try {
    new Database(file).pragma('user_version');
  } catch (err) {
    return err;
  }
  throw new Error('a file of 7s opened as SQLite');
}

describe('codeOf', () => {
  it('reads the code of an AppError, a Node errno, SQLite and the SQLite thread', async () => {
    expect(codeOf(new AppError('lock_held', 'held'))).toBe('lock_held');
    expect(codeOf(new KeyError('decryption_failed', 'bad tag'))).toBe('decryption_failed');
    expect(codeOf(new NotWalMode('/data/app.db', 'delete'))).toBe('not_wal_mode');
    expect(codeOf(await nodeError())).toBe('ENOENT');
    expect(codeOf(sqliteError())).toBe('SQLITE_NOTADB');
    expect(codeOf(new SqliteOpError('database is locked', 'SQLITE_BUSY'))).toBe('SQLITE_BUSY');
    expect(codeOf(new SqliteOpError('no code', undefined))).toBeUndefined();
  });

  it('answers undefined for what carries no string code', () => {
    for (const value of [undefined, null, 'ENOENT', 42, new Error('plain'), { code: 5 }, withCode('null code', null)]) {
      expect(codeOf(value), String(value)).toBeUndefined();
    }
  });

  it("reads an error's own code unless asked to look through its cause", async () => {
    const enoent = await nodeError();
    const wrapped = new Error('could not read it', { cause: enoent });
    expect(codeOf(wrapped)).toBeUndefined();
    expect(codeOf(wrapped, { viaCause: true })).toBe('ENOENT');
    // Its own code wins over its cause's, and a code that is there but not a string stops the look.
    expect(codeOf(withCode('outer', 'EOUTER', enoent), { viaCause: true })).toBe('EOUTER');
    expect(codeOf(withCode('outer', 20, enoent), { viaCause: true })).toBeUndefined();
    // Down a chain, and never round a cycle.
    const deep = new Error('a', { cause: new Error('b', { cause: new Error('c', { cause: enoent }) }) });
    expect(codeOf(deep, { viaCause: true })).toBe('ENOENT');
    const a: { cause?: unknown } = {};
    a.cause = { cause: a };
    expect(codeOf(a, { viaCause: true })).toBeUndefined();
  });

  it('gives what the casts it replaced read, for every kind of input they met', async () => {
    const inputs: unknown[] = [
      new AppError('cancelled', 'cancelled'),
      await nodeError(),
      sqliteError(),
      new SqliteOpError('short', 'SNAPSHOT_SHORT'),
      withCode('locked', 'ELOCKED'),
      new Error('snapshot is unusable', { cause: new SqliteOpError('short', 'SNAPSHOT_SHORT') }),
      new Error('Request aborted', { cause: new AppError('cancelled', 'cancelled') }),
      withCode('numeric', 7),
      new Error('plain'),
    ];
    for (const err of inputs) expect(codeOf(err), String(err)).toBe(ownStringCode(err));
  });

  it('keeps isTransient and isCancelled on the error itself, not on what it wraps', async () => {
    const enoent = await nodeError();
    expect(isTransient(enoent)).toBe(false);
    expect(isTransient(new Error('the live database could not be checked', { cause: enoent }))).toBe(true);
    expect(isTransient(withCode('busy', 'SQLITE_BUSY'))).toBe(true);
    expect(isTransient(permanentFailure('backup_invalid', 'bad'))).toBe(false);
    const cancel = new AppError('cancelled', 'cancelled', true);
    expect(isCancelled(cancel)).toBe(true);
    expect(isCancelled(new Error('Request aborted', { cause: cancel }))).toBe(false);
  });

  it('lets the S3 wording name an errno carried on the cause of a network error', () => {
    const refused = new TypeError('fetch failed', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') });
    const place = { bucket: 'b', location: 's3://b/p', endpoint: 'http://127.0.0.1:1', timeoutMs: 1_000 };
    const explained = explainS3Error(refused, 'listing', place);
    expect(explained.message).toBe('endpoint http://127.0.0.1:1 unreachable (ECONNREFUSED) (while listing)');
    expect(explained.cause).toBe(refused);
  });
});

describe('an error made from another', () => {
  it('keeps it as its cause, and its message as it was', async () => {
    const enoent = await nodeError();
    const failure = permanentFailure('backup_invalid', 'replay failed: gone', enoent);
    expect([failure.message, failure.cause, codeOf(failure)]).toEqual(['replay failed: gone', enoent, 'backup_invalid']);
    expect('cause' in permanentFailure('backup_invalid', 'no cause')).toBe(false);

    const cli = cliFailure(enoent, 'backup');
    expect([cli.message, cli.cause]).toEqual([`backup failed: ${(enoent as Error).message}`, enoent]);
  });

  it('keeps the key file error under KeyError', () => {
    const keyFile = path.join(dir, 'no-such-key');
    const config = parseConfig({
      BACKUP_DIR: path.join(dir, 'b'),
      DATABASE_PATH: path.join(dir, 'db'),
      BACKUP_ENCRYPTION_KEY_FILE: keyFile,
    });
    let thrown: unknown;
    try {
      keyringOf(config);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(KeyError);
    expect([codeOf(thrown), codeOf((thrown as Error).cause)]).toEqual(['key_file_unreadable', 'ENOENT']);
    expect((thrown as Error).message).toContain(keyFile);
  });

  it('keeps why the lock directory cannot be made under FileLockUnavailable', async () => {
    const notADir = path.join(dir, 'backups-is-a-file');
    fs.writeFileSync(notADir, '');
    const config = parseConfig({ BACKUP_DIR: notADir, DATABASE_PATH: path.join(dir, 'db') });
    const err = await tryFileLock(config, 'test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileLockUnavailable);
    expect(codeOf((err as Error).cause)).toMatch(/^E/);
  });

  it('gives the UnrecoverableError of a job failure worth no retry its code and message (no cause: logs would repeat it)', async () => {
    const enoent = await nodeError();
    const unrecoverable = classify(enoent);
    expect(unrecoverable).toBeInstanceOf(UnrecoverableError);
    expect([codeOf(unrecoverable), unrecoverable.message, 'cause' in unrecoverable]).toEqual(['ENOENT', (enoent as Error).message, false]);
    const cancelled = classify(new Error('stopped'), AbortSignal.abort(new Error('operator asked')));
    expect([codeOf(cancelled), cancelled.message]).toEqual(['cancelled', 'cancelled: operator asked']);
    const why = new Error('why');
    expect([isCancelled(cancelledError(AbortSignal.abort(why))), cancelledError(AbortSignal.abort(why)).cause]).toEqual([true, why]);
  });
});

/**
 * Casts left in files whose code is being reworked elsewhere: each comes off its list once it is
 * gone (codeOf in place of a code cast), and no file gains one.
 */
const CODE_CASTS_LEFT: Record<string, number> = {};
const UNKNOWN_CASTS_LEFT: Record<string, number> = {};

function sourceFiles(): string[] {
  return fs
    .readdirSync('src', { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(ts|js|mjs)$/.test(name))
    .map((name) => path.join('src', name).split(path.sep).join('/'));
}

function countsOf(pattern: RegExp): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const file of sourceFiles()) {
    const found = fs.readFileSync(file, 'utf8').match(pattern)?.length ?? 0;
    if (found) counts[file] = found;
  }
  return counts;
}

describe('src/', () => {
  it('reads codes with codeOf, not through casts', () => {
    // `(err as { code?: string })`, `(err as NodeJS.ErrnoException)`, a catch parameter typed so, a JSDoc cast.
    const counts = countsOf(/as \{ code\b|as NodeJS\.ErrnoException|\(\w+: NodeJS\.ErrnoException\)|@type \{\{[^}]*\bcode\b/g);
    for (const [file, count] of Object.entries(counts)) {
      expect(count, `${file}: use codeOf from src/shared/domain/errors.ts`).toBeLessThanOrEqual(CODE_CASTS_LEFT[file] ?? 0);
    }
    for (const file of Object.keys(CODE_CASTS_LEFT))
      expect(counts[file], `${file} has no code cast left: take it off CODE_CASTS_LEFT`).toBeGreaterThan(0);
  });

  it('has no `as unknown as` beyond the ones listed', () => {
    const counts = countsOf(/as unknown as/g);
    for (const [file, count] of Object.entries(counts)) {
      expect(count, `${file}: a cast through unknown`).toBeLessThanOrEqual(UNKNOWN_CASTS_LEFT[file] ?? 0);
    }
    for (const file of Object.keys(UNKNOWN_CASTS_LEFT)) {
      expect(counts[file], `${file} has no \`as unknown as\` left: take it off UNKNOWN_CASTS_LEFT`).toBeGreaterThan(0);
    }
  });
});
