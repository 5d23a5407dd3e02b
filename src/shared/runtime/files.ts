import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { processAlive } from './process-owner.js';

export const BACKUP_PREFIX = 'workstation-backup-';
const TEMP_PREFIX = '.tmp-';

/** `workstation-backup-YYYY-MM-DDTHH-MM-SS`, the runbook's name, in UTC. */
export function backupBaseName(at: Date): string {
  return BACKUP_PREFIX + at.toISOString().slice(0, 19).replace(/:/g, '-');
}

/**
 * Why a temp file exists. Its name says so (`.tmp-<purpose>[-<subject>]-<pid>-<random>`), and the
 * cleanups read it back with `parseTempName` to tell what they may remove:
 * - `backup`, `restore`: a backup's snapshot, a restore's decoded copy (removed by the next holder
 *   of the database lock);
 * - `read`: a verification's decoded copy (verifications run unlocked: removed only when old);
 * - `put`, `text`: a storage write in progress (removed once stale);
 * - the rest belong to the step that made them and are cleaned by it.
 */
export const TEMP_PURPOSES = [
  'backup',
  'restore',
  'read',
  'put',
  'text',
  'probe',
  'api-token',
  'blank-api-token',
  'catalog-rebuild',
] as const;
export type TempPurpose = (typeof TEMP_PURPOSES)[number];

/** A temporary file name in `dir` that no other process will pick; `subject` names what it is of (a backup id). */
export function tempPath(dir: string, purpose: TempPurpose, subject?: string | number): string {
  const about = subject === undefined ? '' : `-${subject}`;
  return path.join(dir, `${TEMP_PREFIX}${purpose}${about}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

/** Longest first, so `blank-api-token` is not read as `api-token`'s kin. */
const PURPOSES_LONGEST_FIRST = [...TEMP_PURPOSES].sort((a, b) => b.length - a.length);
/** The writer's pid and the random part end the name; an extension may follow (`.db.gz`). */
/** What a temp file's name says: why it exists and which process made it; null for other names. */
export function parseTempName(name: string): { purpose: TempPurpose | undefined; pid: number | undefined } | null {
  if (!isTempName(name)) return null;
  const rest = name.slice(TEMP_PREFIX.length);
  const purpose = PURPOSES_LONGEST_FIRST.find((p) => rest.startsWith(`${p}-`));
  const pid = Number(TEMP_PID.exec(name)?.[1]);
  return { purpose, pid: pid || undefined };
}

export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
}

export async function fsyncPath(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The writer's pid in a temp name (see tempPath), before the random part and any extension. */
const TEMP_PID = /-(\d+)-[0-9a-f]{12}(?:\.[^-]*)?$/;

/** Readers (verify) run without the lock; a decoded copy of theirs this old belongs to a dead process. */
const STALE_READ_TEMP_MS = 6 * 3_600_000;

/**
 * Temp files left by a worker that died in a backup or a restore (a safety backup, a decoded copy
 * to restore from), and decoded copies left by a reader that died long ago (for an encrypted
 * backup they are plaintext). Only a holder of the database lock may call this: no other backup or
 * restore is running then; copies of live verify jobs, which run unlocked, are young and kept.
 */
export async function removeAbandonedBackupTemps(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const stale = async (n: string) => {
    const s = await fs.stat(path.join(dir, n)).catch(() => null);
    return Boolean(s && Date.now() - s.mtimeMs > STALE_READ_TEMP_MS);
  };
  const doomed: string[] = [];
  for (const n of names) {
    const temp = parseTempName(n);
    if (!temp) continue;
    // A CLI run holding only the local lock may be writing it. Our own pid is not such a writer:
    // the caller holds the lock, so a temp of ours is a previous process's that had our pid.
    if (temp.pid && temp.pid !== process.pid && processAlive(temp.pid)) continue;
    const locked = temp.purpose === 'backup' || temp.purpose === 'restore';
    if (locked || (temp.purpose === 'read' && (await stale(n)))) doomed.push(path.join(dir, n));
  }
  await removeQuietly(...doomed);
}

/** A write temp untouched this long is abandoned whoever wrote it: a live writer keeps it fresh. */
export const WRITE_TEMP_STALE_MS = 15 * 60_000;
/**
 * How long a write temp of a process that is gone is kept anyway. The pid is only meaningful on
 * this host: workers in other containers sharing the volume have pids of their own namespace, so a
 * pid that looks dead here may be writing there; their writes keep the file fresh for this long.
 */
export const DEAD_WRITER_GRACE_MS = 60_000;

/**
 * Removes what a writer killed in the middle of `put` or `putText` (storage.ts) left behind: the
 * `.tmp-put-` and `.tmp-text-` files of `dir`, once untouched for WRITE_TEMP_STALE_MS, or for
 * DEAD_WRITER_GRACE_MS when the pid in the name is not running here. Safe without the database
 * lock: a live writer's file is younger than either bound. Returns the files removed.
 */
export async function removeStaleWriteTemps(dir: string, now = Date.now()): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const doomed: string[] = [];
  for (const name of names) {
    const temp = parseTempName(name);
    if (temp?.purpose !== 'put' && temp?.purpose !== 'text') continue;
    const file = path.join(dir, name);
    const s = await fs.stat(file).catch(() => null);
    if (!s?.isFile()) continue;
    const idle = now - s.mtimeMs;
    const pid = temp.pid;
    if (idle > WRITE_TEMP_STALE_MS || (idle > DEAD_WRITER_GRACE_MS && pid !== undefined && pid !== process.pid && !processAlive(pid))) {
      doomed.push(file);
    }
  }
  await removeQuietly(...doomed);
  return doomed;
}

export async function removeQuietly(...files: string[]): Promise<void> {
  await Promise.all(files.map((f) => fs.rm(f, { force: true }).catch(() => undefined)));
}

/**
 * Whether `file` lies inside `dir` (after resolving `..`): a catalog row cannot point elsewhere,
 * and the mirror cannot sit inside the backup directory or hold it.
 */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
