import type { BackupRow, Catalog } from '../catalog/catalog.js';
import { manifestName } from '../catalog/manifest.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';
import { storesOf } from './registry.js';
import { nameOf } from './storage.js';

/** The `backup_copy.location` of the mirror's copies. */
export const MIRROR = 'mirror';

interface MirrorContext {
  config: Config;
  catalog: Catalog;
  log: Logger;
  signal?: AbortSignal;
}

/** Since when the mirror has been failing and why; kept in the catalog until a copy succeeds. */
export interface MirrorOutage {
  since: string;
  reason: string;
  /** Whether the `mirror.failed` alert for this outage went out: one alert per outage. */
  announced: boolean;
}

const OUTAGE = 'mirror-outage';

export const mirrorOutage = (catalog: Catalog): MirrorOutage | undefined => catalog.getSetting<MirrorOutage | null>(OUTAGE) ?? undefined;

/**
 * The outage to announce, once: marks it announced and returns it, or undefined when there is
 * none or it was announced already.
 */
export function takeUnannouncedOutage(catalog: Catalog): MirrorOutage | undefined {
  let taken: MirrorOutage | undefined;
  catalog.updateSetting(OUTAGE, (stored) => {
    const outage = stored as MirrorOutage | null | undefined;
    if (!outage || outage.announced) return outage ?? null;
    taken = outage;
    return { ...outage, announced: true };
  });
  return taken;
}

function recordOutcome(catalog: Catalog, backupId: number, error: string | null): void {
  catalog.recordCopy(backupId, MIRROR, error === null, error);
  const outage = mirrorOutage(catalog);
  if (error === null && outage) catalog.setSetting(OUTAGE, null);
  if (error !== null && !outage) catalog.setSetting(OUTAGE, { since: new Date().toISOString(), reason: error, announced: false });
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
  const name = nameOf(backup);
  const opts = { signal: ctx.signal };
  try {
    await mirror.put(primary.localPath(name), name, backup.checksum, opts);
    const manifest = await primary.getText(manifestName(name), opts);
    if (manifest !== undefined) await mirror.putText(manifestName(name), manifest, opts);
    recordOutcome(ctx.catalog, backup.id, null);
    log.info({ backupId: backup.id, mirror: mirror.location }, 'backup copied to the mirror');
    return true;
  } catch (err) {
    const reason = messageOf(err);
    recordOutcome(ctx.catalog, backup.id, reason);
    log.error({ backupId: backup.id, mirror: mirror.location, reason, err }, 'copying the backup to the mirror failed');
    return false;
  }
}

/**
 * Copies every completed backup that the mirror lacks (a mirror that was away, or newly
 * configured), and deletes the copies retention could not delete then. What the mirror lacks
 * comes from the catalog, not from listing the bucket. Runs after each backup whose own copy
 * succeeded, under the same lock; stops at the first copy that fails (the mirror went away again).
 */
export async function catchUpMirror(ctx: MirrorContext): Promise<number> {
  const { mirror, primary } = storesOf(ctx.config);
  if (!mirror) return 0;
  await retryMirrorRemovals(ctx);
  let copied = 0;
  for (const backup of ctx.catalog.backupsWithoutCopy(MIRROR)) {
    if (!(await primary.stat(nameOf(backup)))) continue;
    if (!(await copyToMirror(ctx, backup))) break;
    copied++;
  }
  return copied;
}

/** Deletes a backup's file and manifest from the mirror (retention). */
export async function removeFromMirror(config: Config, name: string): Promise<void> {
  const { mirror } = storesOf(config);
  if (!mirror) return;
  await mirror.remove(name);
  await mirror.remove(manifestName(name));
}

const PENDING_REMOVALS = 'mirror-pending-removals';

/** Remembers a mirror copy that retention could not delete (the mirror was away). */
export function deferMirrorRemoval(catalog: Catalog, name: string): void {
  const pending = catalog.getSetting<string[]>(PENDING_REMOVALS) ?? [];
  if (!pending.includes(name)) catalog.setSetting(PENDING_REMOVALS, [...pending, name]);
}

async function retryMirrorRemovals(ctx: MirrorContext): Promise<void> {
  const pending = ctx.catalog.getSetting<string[]>(PENDING_REMOVALS) ?? [];
  if (!pending.length) return;
  const left: string[] = [];
  for (const entry of pending) {
    // Entries written before names were kept are full paths.
    const name = nameOf({ file_path: entry });
    await removeFromMirror(ctx.config, name).catch(() => left.push(name));
  }
  ctx.catalog.setSetting(PENDING_REMOVALS, left);
}
