import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Catalog } from './catalog.js';
import { BACKUP_FILE_PATTERN } from './codec.js';
import type { Config } from './config.js';
import { keyringOf } from './encryption.js';
import { messageOf } from './errors.js';
import type { Logger } from './logger.js';
import { backupNameOfManifest, parseManifest, toImported, type Manifest } from './manifest.js';
import { MIRROR } from './mirror.js';
import { storesOf, type BackupStorage } from './storage.js';

export interface ReindexReport {
  /** Ids put back into the catalog from manifests. */
  imported: number[];
  /** Ids whose rows were already there. */
  known: number[];
  /** Backup files with no manifest: listed, not guessed at. */
  withoutManifest: string[];
  /** Manifests whose backup file is on neither the primary nor the mirror. */
  withoutFile: string[];
  /** Manifests that do not parse, with the reason. */
  unreadable: { name: string; error: string }[];
  /** Manifests whose id is taken by a different file in the catalog. */
  conflicts: { name: string; id: number; catalogFile: string }[];
}

interface Found {
  manifest: Manifest;
  manifestName: string;
  onPrimary: boolean;
  onMirror: boolean;
}

async function scan(
  store: BackupStorage,
  report: ReindexReport,
  found: Map<number, Found>,
  role: 'primary' | 'mirror',
): Promise<Set<string>> {
  const names = new Set(await store.list());
  for (const name of names) {
    const fileName = backupNameOfManifest(name);
    if (!fileName) continue;
    const text = await store.getText(name);
    let manifest: Manifest;
    try {
      manifest = parseManifest(text ?? '');
      if (manifest.fileName !== fileName) throw new Error(`names ${manifest.fileName}, not ${fileName}`);
    } catch (err) {
      report.unreadable.push({ name: `${store.location}/${name}`, error: messageOf(err).slice(0, 300) });
      continue;
    }
    const seen = found.get(manifest.id) ?? { manifest, manifestName: name, onPrimary: false, onMirror: false };
    if (names.has(fileName)) seen[role === 'primary' ? 'onPrimary' : 'onMirror'] = true;
    found.set(manifest.id, seen);
  }
  return names;
}

/**
 * Rebuilds the catalog's backup rows from the manifests beside the backups, on the primary and on
 * the mirror, keeping each backup's id. Rows already in the catalog are left as they are.
 * Verification history, restore history and stored settings are not in manifests and do not come
 * back.
 */
export async function reindex(config: Config, catalog: Catalog, log: Logger): Promise<ReindexReport> {
  const report: ReindexReport = { imported: [], known: [], withoutManifest: [], withoutFile: [], unreadable: [], conflicts: [] };
  const { primary, mirror } = storesOf(config);
  const found = new Map<number, Found>();
  const primaryNames = await scan(primary, report, found, 'primary');
  const mirrorNames = mirror ? await scan(mirror, report, found, 'mirror') : new Set<string>();

  const described = new Set([...found.values()].map((f) => f.manifest.fileName));
  for (const [store, names] of [
    [primary, primaryNames],
    [mirror, mirrorNames],
  ] as const) {
    for (const name of names) {
      if (BACKUP_FILE_PATTERN.test(name) && !described.has(name)) report.withoutManifest.push(`${store!.location}/${name}`);
    }
  }

  const ring = keyringOf(config);
  for (const f of [...found.values()].sort((a, b) => a.manifest.id - b.manifest.id)) {
    const filePath = path.join(config.backupDir, f.manifest.fileName);
    if (!f.onPrimary && !f.onMirror) {
      report.withoutFile.push(f.manifestName);
      continue;
    }
    const existing = catalog.getBackup(f.manifest.id);
    if (existing) {
      if (path.basename(existing.file_path) === f.manifest.fileName) report.known.push(f.manifest.id);
      else report.conflicts.push({ name: f.manifestName, id: f.manifest.id, catalogFile: existing.file_path });
      continue;
    }
    if (catalog.importBackup(toImported(f.manifest, filePath, ring))) {
      report.imported.push(f.manifest.id);
      if (f.onMirror) catalog.recordCopy(f.manifest.id, MIRROR, true);
    }
  }
  const level = report.withoutManifest.length || report.unreadable.length || report.conflicts.length ? 'warn' : 'info';
  log[level](
    {
      imported: report.imported.length,
      known: report.known.length,
      withoutManifest: report.withoutManifest,
      withoutFile: report.withoutFile,
      unreadable: report.unreadable,
      conflicts: report.conflicts,
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

/**
 * Opens the catalog for a process that is starting. When the file does not exist (lost with a
 * disk, deleted by hand), it is rebuilt from the manifests before anything else uses it.
 */
export async function openCatalog(config: Config, log: Logger): Promise<{ catalog: Catalog; rebuilt?: ReindexReport }> {
  const missing = !fs.existsSync(config.catalogPath);
  const catalog = new Catalog(config.catalogPath, { busyTimeout: config.catalogBusyTimeout });
  if (!missing) return { catalog };
  log.info({ catalog: config.catalogPath }, 'no catalog yet: building it from the manifests of any backups present');
  try {
    return { catalog, rebuilt: await reindex(config, catalog, log) };
  } catch (err) {
    catalog.close();
    throw err;
  }
}
