import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Catalog } from './catalog.js';
import { BACKUP_FILE_PATTERN } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import { fsyncPath, isTempName, removeQuietly, tempPath } from '../runtime/files.js';
import type { Logger } from '../observability/logger.js';
import { backupNameOfManifest, toImported, type Manifest } from './manifest.js';
import { differingFields, implausibleIds, scanManifests, type Candidate, type Refusal, type Scanned } from './manifest-trust.js';
import { MIRROR } from '../storage/mirror.js';
import { storesOf } from '../storage/storage.js';

export interface ReindexReport {
  /** Ids put back into the catalog from manifests. */
  imported: number[];
  /** Ids whose rows were already there. */
  known: number[];
  /** Backup files with no manifest: listed, not guessed at. */
  withoutManifest: string[];
  /** Manifests whose backup file is on neither the primary nor the mirror. */
  withoutFile: string[];
  /** Manifests that cannot be read or do not parse, with the reason. */
  unreadable: { name: string; error: string }[];
  /** Manifests that parse but are not trusted, with the reason: never imported. */
  refused: Refusal[];
  /** Manifests whose id is taken by a different file in the catalog. */
  conflicts: { name: string; id: number; catalogFile: string }[];
  /** Why the mirror could not be read; the primary's backups are imported all the same. */
  mirrorError: string | null;
}

export interface ReindexOptions {
  /**
   * Skip the id plausibility check for manifests without a MAC (the operator vouches for them):
   * for ids that a restored old catalog or a long run of failed backups made look far off.
   */
  trustIds?: boolean;
  /**
   * With encryption on, import manifests that carry no MAC (written before encryption was turned
   * on, or before manifests were signed). A MAC that is there and fails is still refused.
   */
  acceptUnsigned?: boolean;
}

interface Entry {
  manifest: Manifest;
  location: string;
  authenticated: boolean;
  onPrimary: boolean;
  onMirror: boolean;
}

/**
 * Rebuilds the catalog's backup rows from the manifests beside the backups, on the primary and on
 * the mirror, keeping each backup's id. Rows already in the catalog are left as they are.
 * Verification history, restore history and stored settings are not in manifests and do not come
 * back. A manifest is imported only when it names a backup file, its id and file are its own
 * (no other manifest or row claims them), its id is plausible, and, with encryption on, its MAC
 * checks out; every other one is reported with the reason. A mirror that cannot be read is
 * reported, and the primary's backups are imported all the same.
 */
export async function reindex(config: Config, catalog: Catalog, log: Logger, opts: ReindexOptions = {}): Promise<ReindexReport> {
  const report: ReindexReport = {
    imported: [],
    known: [],
    withoutManifest: [],
    withoutFile: [],
    unreadable: [],
    refused: [],
    conflicts: [],
    mirrorError: null,
  };
  const { primary, mirror } = storesOf(config);
  const ring = keyringOf(config);
  const onPrimary = await scanManifests(primary, ring, opts);
  let onMirror: Scanned = { names: new Set(), candidates: [], unreadable: [], refused: [] };
  if (mirror) {
    try {
      onMirror = await scanManifests(mirror, ring, opts);
    } catch (err) {
      report.mirrorError = `${mirror.location}: ${messageOf(err)}`;
    }
  }
  for (const scanned of [onPrimary, onMirror]) {
    report.unreadable.push(...scanned.unreadable);
    report.refused.push(...scanned.refused);
  }

  const described = new Set([...onPrimary.names, ...onMirror.names].map(backupNameOfManifest).filter(Boolean));
  for (const [store, names] of [
    [primary, onPrimary.names],
    [mirror, onMirror.names],
  ] as const) {
    for (const name of names) {
      if (BACKUP_FILE_PATTERN.test(name) && !described.has(name)) report.withoutManifest.push(`${store!.location}/${name}`);
    }
  }

  // One entry per backup file; the primary's and the mirror's manifests of it must agree.
  const byFile = new Map<string, Candidate[]>();
  for (const c of [...onPrimary.candidates, ...onMirror.candidates]) {
    byFile.set(c.manifest.fileName, [...(byFile.get(c.manifest.fileName) ?? []), c]);
  }
  const entries: Entry[] = [];
  for (const [fileName, copies] of byFile) {
    const first = copies[0]!;
    const differ = [...new Set(copies.slice(1).flatMap((c) => differingFields(first.manifest, c.manifest)))];
    if (differ.length) {
      for (const c of copies) {
        report.refused.push({
          name: c.location,
          id: c.manifest.id,
          reason: `the manifests of ${fileName} on the primary and the mirror differ (${differ.join(', ')})`,
        });
      }
      continue;
    }
    entries.push({
      manifest: first.manifest,
      location: first.location,
      authenticated: copies.some((c) => c.authenticated),
      onPrimary: onPrimary.names.has(fileName),
      onMirror: onMirror.names.has(fileName),
    });
  }

  // One id, one file: when two files claim an id, neither can be told to be the real one.
  const byId = new Map<number, Entry[]>();
  for (const e of entries) byId.set(e.manifest.id, [...(byId.get(e.manifest.id) ?? []), e]);
  const implausible = opts.trustIds
    ? new Map<number, string>()
    : implausibleIds(
        entries.map((e) => e.manifest.id),
        catalog.backupIdCeiling(),
      );
  const trusted: Entry[] = [];
  for (const [id, claims] of byId) {
    const reason =
      claims.length > 1
        ? `id ${id} is claimed by the manifests of ${claims.map((e) => e.manifest.fileName).join(' and ')}`
        : !claims[0]!.authenticated && implausible.has(id)
          ? `${implausible.get(id)!}; if it is genuine, run: workstation-backup reindex --trust-ids`
          : undefined;
    if (reason) for (const e of claims) report.refused.push({ name: e.location, id, reason });
    else trusted.push(claims[0]!);
  }

  for (const e of trusted.sort((a, b) => a.manifest.id - b.manifest.id)) {
    const { id, fileName } = e.manifest;
    if (!e.onPrimary && !e.onMirror) {
      report.withoutFile.push(e.location);
      continue;
    }
    const existing = catalog.getBackup(id);
    if (existing) {
      if (path.basename(existing.file_path) === fileName) report.known.push(id);
      else report.conflicts.push({ name: e.location, id, catalogFile: existing.file_path });
      continue;
    }
    const outcome = catalog.importBackup(toImported(e.manifest, path.join(config.backupDir, fileName), ring));
    if (outcome === 'imported') {
      report.imported.push(id);
      if (e.onMirror) catalog.recordCopy(id, MIRROR, true);
    } else if (outcome === 'file_taken') {
      const other = catalog.getBackupByFile(fileName);
      report.refused.push({ name: e.location, id, reason: `the catalog already lists ${fileName} as backup ${other?.id ?? '?'}` });
    }
  }
  const troubled =
    report.withoutManifest.length || report.unreadable.length || report.conflicts.length || report.refused.length || report.mirrorError;
  log[troubled ? 'warn' : 'info'](
    {
      imported: report.imported.length,
      known: report.known.length,
      withoutManifest: report.withoutManifest,
      withoutFile: report.withoutFile,
      unreadable: report.unreadable,
      refused: report.refused,
      conflicts: report.conflicts,
      mirrorError: report.mirrorError,
    },
    'catalog reindexed from manifests',
  );
  return report;
}

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
const REBUILD_LABEL = 'catalog-rebuild';
const COMPANIONS = ['-wal', '-shm', '-journal'];
/**
 * A rebuild writes to its temp file all along (a few thousand manifests take seconds); one left
 * untouched this long belongs to a process that died, while a younger one may be another
 * process's rebuild in progress (the producer and workers start together).
 */
const ABANDONED_REBUILD_MS = 10 * 60_000;

async function removeAbandonedRebuilds(dir: string, log: Logger): Promise<void> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const ours = (n: string) => isTempName(n) && n.includes(`${REBUILD_LABEL}-`);
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
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fsyncPath(path.dirname(target));
  return true;
}

/**
 * Builds a new catalog from the manifests into a temp file beside the catalog's place, and moves
 * it there only once it is complete (fsync of the file and of the directory): a rebuild that
 * fails or is killed half way leaves no catalog, so the next start rebuilds again instead of
 * finding an empty or partial one. When another process put its rebuild in place meanwhile, the
 * manifests are imported into that one instead.
 */
export async function rebuildCatalog(config: Config, log: Logger, opts: ReindexOptions = {}): Promise<ReindexReport> {
  const dir = path.dirname(config.catalogPath);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await removeAbandonedRebuilds(dir, log);
  const temp = tempPath(dir, REBUILD_LABEL);
  try {
    const building = new Catalog(temp, { busyTimeout: config.catalogBusyTimeout });
    let report: ReindexReport;
    try {
      report = await reindex(config, building, log, opts);
      // One self-contained file (its WAL folded in), so that moving it moves everything.
      building.db.pragma('journal_mode = DELETE');
    } finally {
      building.close();
    }
    await fsyncPath(temp);
    if (await install(temp, config.catalogPath)) return report;
    const existing = new Catalog(config.catalogPath, { busyTimeout: config.catalogBusyTimeout });
    try {
      return await reindex(config, existing, log, opts);
    } finally {
      existing.close();
    }
  } finally {
    await removeQuietly(temp, ...COMPANIONS.map((s) => temp + s));
    await fsyncPath(dir).catch(() => undefined);
  }
}

/**
 * Opens the catalog for a process that is starting. When the file does not exist (lost with a
 * disk, deleted by hand), it is rebuilt from the manifests before anything else uses it.
 */
export async function openCatalog(config: Config, log: Logger): Promise<{ catalog: Catalog; rebuilt?: ReindexReport }> {
  const open = () => new Catalog(config.catalogPath, { busyTimeout: config.catalogBusyTimeout });
  if (fs.existsSync(config.catalogPath)) return { catalog: open() };
  log.info({ catalog: config.catalogPath }, 'no catalog yet: building it from the manifests of any backups present');
  const rebuilt = await rebuildCatalog(config, log);
  return { catalog: open(), rebuilt };
}
