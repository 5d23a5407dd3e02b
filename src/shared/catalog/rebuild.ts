import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Catalog } from './catalog.js';
import type { Config } from '../runtime/config.js';
import { codeOf, messageOf } from '../domain/errors.js';
import { fsyncPath, parseTempName, removeQuietly, tempPath, type TempPurpose } from '../runtime/files.js';
import type { Logger } from '../runtime/logger.js';

/** Whether a catalog file opens as a sound SQLite database with the backup table in it. */
export function catalogIsSound(file: string): { ok: true } | { ok: false; reason: string } {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const check = String(db.pragma('quick_check', { simple: true }));
    if (check !== 'ok') return { ok: false, reason: `quick_check: ${check}` };
    db.prepare('SELECT count(*) FROM backup_log').get();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: messageOf(err) };
  } finally {
    db?.close();
  }
}

/** Moves a damaged catalog (and its WAL companions) aside, so a rebuild starts from nothing. */
export function moveCatalogAside(file: string): string {
  const aside = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, aside + suffix);
  }
  return aside;
}

/** Rebuild temp files: `.tmp-catalog-rebuild-<pid>-<random>`, with SQLite's companions. */
const REBUILD_LABEL = 'catalog-rebuild' satisfies TempPurpose;
const COMPANIONS = ['-wal', '-shm', '-journal'];
/**
 * A rebuild writes to its temp file all along (a few thousand manifests take seconds); one left
 * untouched this long belongs to a process that died, while a younger one may be another
 * process's rebuild in progress (the producer and workers start together).
 */
const ABANDONED_REBUILD_MS = 10 * 60_000;

async function removeAbandonedRebuilds(dir: string, log: Logger): Promise<void> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const ours = (n: string) => parseTempName(n)?.purpose === REBUILD_LABEL;
  const bases = new Set(names.filter(ours).map((n) => n.replace(/-(wal|shm|journal)$/, '')));
  for (const base of bases) {
    const files = [base, ...COMPANIONS.map((s) => base + s)].map((n) => path.join(dir, n));
    const touched = await Promise.all(
      files.map((f) =>
        fsp.stat(f).then(
          (s) => s.mtimeMs,
          () => 0,
        ),
      ),
    );
    if (Date.now() - Math.max(...touched) < ABANDONED_REBUILD_MS) continue;
    await removeQuietly(...files);
    log.warn({ file: path.join(dir, base) }, 'removed the temp file of a catalog rebuild that did not finish');
  }
}

/**
 * Puts a finished catalog file in place without replacing one: when another process installed
 * its own rebuild first, that one stays and false is returned.
 */
async function install(temp: string, target: string): Promise<boolean> {
  if (!fs.existsSync(target)) {
    // The WAL of a catalog deleted by hand would be replayed into the new file: keep it aside.
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const suffix of ['-wal', '-shm']) {
      if (fs.existsSync(target + suffix)) await fsp.rename(target + suffix, `${target}.orphaned-${stamp}${suffix}`);
    }
  }
  try {
    await fsp.link(temp, target);
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return false;
    throw err;
  }
  await fsyncPath(path.dirname(target));
  return true;
}

/**
 * Builds a new catalog into a temp file beside the catalog's place, filled by `fill` (the
 * manifests' import: `rebuildCatalog` in operations/reindex.ts), and moves it there only once it
 * is complete (fsync of the file and of the directory): a rebuild that fails or is killed half way
 * leaves no catalog, so the next start rebuilds again instead of finding an empty or partial one.
 * When another process put its rebuild in place meanwhile, `fill` runs on that one instead.
 */
export async function buildCatalogFile<R>(config: Config, log: Logger, fill: (catalog: Catalog) => Promise<R>): Promise<R> {
  const dir = path.dirname(config.catalogPath);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await removeAbandonedRebuilds(dir, log);
  const temp = tempPath(dir, REBUILD_LABEL);
  try {
    const building = new Catalog(temp, { busyTimeout: config.catalogBusyTimeout });
    let report: R;
    try {
      report = await fill(building);
      // One self-contained file (its WAL folded in), so that moving it moves everything.
      building.makeSelfContained();
    } finally {
      building.close();
    }
    await fsyncPath(temp);
    if (await install(temp, config.catalogPath)) return report;
    const existing = new Catalog(config.catalogPath, { busyTimeout: config.catalogBusyTimeout });
    try {
      return await fill(existing);
    } finally {
      existing.close();
    }
  } finally {
    await removeQuietly(temp, ...COMPANIONS.map((s) => temp + s));
    await fsyncPath(dir).catch(() => undefined);
  }
}
