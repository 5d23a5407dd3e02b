// Where the processes find the catalog's recovery: importing manifests (`reindex`, here), and
// checking and rebuilding the catalog file (catalog/rebuild.ts, re-exported). It sits above the
// catalog because it reads the backups' stores and the bucket's WAL archive.
import path from 'node:path';
import type { Catalog } from '../catalog/catalog.js';
import { BACKUP_FILE_PATTERN } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../runtime/logger.js';
import { backupNameOfManifest, toImported, type Manifest } from '../catalog/manifest.js';
import { differingFields, implausibleIds, scanManifests, type Candidate, type Refusal, type Scanned } from './manifest-trust.js';
import { buildCatalogFile } from '../catalog/rebuild.js';
import { MIRROR } from '../storage/mirror.js';
import { storesOf } from '../storage/registry.js';
import { importWalArchive, type WalImportReport } from '../wal/bucket-import.js';

export { catalogIsSound, moveCatalogAside } from '../catalog/rebuild.js';

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
  /** The WAL archive's generations and segments put back from the bucket (null without a mirror). */
  wal: WalImportReport | null;
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
    wal: null,
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
  // After the backups: a generation keeps its snapshot only when the catalog lists that backup.
  if (mirror) report.wal = await importWalArchive(config, catalog);
  const troubled =
    report.wal?.refused.length ||
    report.wal?.error ||
    report.withoutManifest.length ||
    report.unreadable.length ||
    report.conflicts.length ||
    report.refused.length ||
    report.mirrorError;
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
      wal: report.wal && { ...report.wal, generations: report.wal.generations.length },
    },
    'catalog reindexed from manifests',
  );
  return report;
}

/** A new catalog file built from the manifests (see `buildCatalogFile`), for a catalog that is missing. */
export function rebuildCatalog(config: Config, log: Logger, opts: ReindexOptions = {}): Promise<ReindexReport> {
  return buildCatalogFile(config, log, (catalog) => reindex(config, catalog, log, opts));
}
