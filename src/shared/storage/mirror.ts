import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupRow, Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import { manifestName } from '../catalog/manifest.js';
import { storesOf } from './storage.js';

export const MIRROR = 'mirror';

interface MirrorContext {
  config: Config;
  catalog: Catalog;
  log: Logger;
}

/**
 * Copies a completed backup and its manifest to the mirror, checks the copy's SHA-256 there, and
 * records the outcome. Never throws: the primary copy is complete whatever happens here.
 * Returns whether the mirror holds a good copy.
 */
export async function copyToMirror(ctx: MirrorContext, backup: BackupRow): Promise<boolean> {
  const { mirror, primary } = storesOf(ctx.config);
  if (!mirror || backup.status !== 'completed' || !backup.checksum) return false;
  const log = ctx.log.child({ component: 'mirror' });
  const name = path.basename(backup.file_path);
  try {
    await mirror.put(backup.file_path, name, backup.checksum);
    const manifest = await primary.getText(manifestName(name));
    if (manifest !== undefined) await mirror.putText(manifestName(name), manifest);
    ctx.catalog.recordCopy(backup.id, MIRROR, true);
    log.info({ backupId: backup.id, mirror: mirror.location }, 'backup copied to the mirror');
    return true;
  } catch (err) {
    ctx.catalog.recordCopy(backup.id, MIRROR, false, messageOf(err));
    log.error({ backupId: backup.id, mirror: mirror.location, err }, 'copying the backup to the mirror failed');
    return false;
  }
}

/**
 * Copies every completed backup that the mirror lacks (a mirror that was away, or newly
 * configured), and deletes the copies retention could not delete then. Runs after each backup
 * whose own copy succeeded, under the same lock.
 */
export async function catchUpMirror(ctx: MirrorContext): Promise<number> {
  if (!ctx.config.mirrorDir) return 0;
  await retryMirrorRemovals(ctx);
  let copied = 0;
  for (const backup of ctx.catalog.backupsWithoutCopy(MIRROR)) {
    const exists = await fs.stat(backup.file_path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (exists && (await copyToMirror(ctx, backup))) copied++;
  }
  return copied;
}

/** Deletes a backup's file and manifest from the mirror (retention). */
export async function removeFromMirror(config: Config, backup: Pick<BackupRow, 'file_path'>): Promise<void> {
  const { mirror } = storesOf(config);
  if (!mirror) return;
  const name = path.basename(backup.file_path);
  await mirror.remove(name);
  await mirror.remove(manifestName(name));
}

const PENDING_REMOVALS = 'mirror-pending-removals';

/** Remembers a mirror copy that retention could not delete (the mirror was away). */
export function deferMirrorRemoval(catalog: Catalog, filePath: string): void {
  const pending = catalog.getSetting<string[]>(PENDING_REMOVALS) ?? [];
  if (!pending.includes(filePath)) catalog.setSetting(PENDING_REMOVALS, [...pending, filePath]);
}

async function retryMirrorRemovals(ctx: MirrorContext): Promise<void> {
  const pending = ctx.catalog.getSetting<string[]>(PENDING_REMOVALS) ?? [];
  if (!pending.length) return;
  const left: string[] = [];
  for (const file of pending) {
    await removeFromMirror(ctx.config, { file_path: file }).catch(() => left.push(file));
  }
  ctx.catalog.setSetting(PENDING_REMOVALS, left);
}
