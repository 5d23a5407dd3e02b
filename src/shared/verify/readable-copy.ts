/**
 * Where a backup's copies are read from (the primary, the mirror) and a readable SQLite file made
 * from one: the file itself, or a temp file downloaded, decrypted and decompressed.
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupRow } from '../catalog/catalog.js';
import { decodeStream, isPlain } from '../codec/codec.js';
import type { Config } from '../runtime/config.js';
import { keyringOf } from '../codec/encryption.js';
import { ensurePrivateDir, isTempName, removeQuietly, tempPath } from '../runtime/files.js';
import { LocalDirStorage } from '../storage/local-dir.js';
import { storesOf } from '../storage/registry.js';
import { nameOf, type BackupStorage } from '../storage/storage.js';

/** An uncompressed SQLite file for a backup: the file itself, or a temp copy to remove after use. */
export interface ReadableCopy {
  path: string;
  release(): Promise<void>;
  /** For a copy decoded from a backup file: the SHA-256 of the file's bytes as they were read for it. */
  sha256?: string;
}

/** Where one copy of a backup is read from. */
export interface Source {
  store: BackupStorage;
  name: string;
}

export function primarySource(config: Config, backup: BackupRow): Source {
  const dir = path.dirname(path.resolve(backup.file_path));
  // A row whose file sits deeper inside BACKUP_DIR (catalogs from before names) is read where it is.
  const store = dir === config.backupDir ? storesOf(config).primary : new LocalDirStorage('primary', dir);
  return { store, name: nameOf(backup) };
}

export function mirrorSource(config: Config, backup: BackupRow): Source | undefined {
  const { mirror } = storesOf(config);
  return mirror ? { store: mirror, name: nameOf(backup) } : undefined;
}

/**
 * Downloads a copy from a target that is not a filesystem (a bucket) into a temp file in
 * BACKUP_DIR, once: the checks then read it like a local copy.
 */
export async function download(config: Config, backup: BackupRow, source: Source, purpose: 'read' | 'restore'): Promise<string> {
  await ensurePrivateDir(config.backupDir);
  const temp = tempPath(config.backupDir, purpose, backup.id);
  try {
    await pipeline(await source.store.read(source.name), createWriteStream(temp, { mode: 0o600 }));
    return temp;
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
}

export const encodingOf = (backup: BackupRow) => ({ compression: backup.compression ?? 'none', encryption: backup.encryption ?? null });

/**
 * `purpose` names the temp file: a restore's copies are `restore-…`, which the next holder of the
 * database lock may remove if the restoring worker died; plain reads run beside each other unlocked.
 */
export async function decodedCopy(
  config: Config,
  backup: BackupRow,
  source: Source,
  purpose: 'read' | 'restore' = 'read',
): Promise<ReadableCopy> {
  const local = source.store.localPath(source.name);
  if (isPlain(encodingOf(backup)) && local) {
    // A download is a temp file of its own: the copy is it, and releasing it removes it.
    const isTemp = isTempName(path.basename(local));
    return { path: local, release: async () => (isTemp ? removeQuietly(local) : undefined) };
  }
  await ensurePrivateDir(config.backupDir);
  const temp = tempPath(config.backupDir, purpose, backup.id);
  let sha256: string;
  try {
    sha256 = await decodeStream(await source.store.read(source.name), temp, encodingOf(backup), keyringOf(config));
  } catch (err) {
    await removeQuietly(temp);
    throw err;
  }
  return { path: temp, release: () => removeQuietly(temp), sha256 };
}

/**
 * A readable SQLite copy of a backup: from BACKUP_DIR, or from the mirror when the primary file
 * is missing. Decrypted and decompressed into a temp file when needed.
 */
export async function readableCopy(config: Config, backup: BackupRow, purpose: 'read' | 'restore' = 'read'): Promise<ReadableCopy> {
  const primary = primarySource(config, backup);
  const mirror = mirrorSource(config, backup);
  const source = !(await primary.store.stat(primary.name)) && mirror && (await mirror.store.stat(mirror.name)) ? mirror : primary;
  if (source.store.localPath(source.name)) return decodedCopy(config, backup, source, purpose);
  const raw = await download(config, backup, source, purpose);
  try {
    const copy = await decodedCopy(config, backup, localSource(raw), purpose);
    if (copy.path === raw) return copy;
    await removeQuietly(raw);
    return copy;
  } catch (err) {
    await removeQuietly(raw);
    throw err;
  }
}

/** A temp file in BACKUP_DIR as a source. */
export const localSource = (file: string): Source => ({
  store: new LocalDirStorage('primary', path.dirname(file)),
  name: path.basename(file),
});
