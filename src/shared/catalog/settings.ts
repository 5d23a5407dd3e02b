import { z } from 'zod';
import type { Catalog } from './catalog.js';
import {
  MAX_AUTO_BACKUP_INTERVAL,
  MAX_WAL_ARCHIVE_INTERVAL,
  MAX_WAL_RETENTION,
  MIN_AUTO_BACKUP_INTERVAL,
  MIN_WAL_ARCHIVE_INTERVAL,
  MIN_WAL_RETENTION,
  type Config,
} from '../runtime/config.js';
import { verifyScheduleSchema } from '../domain/schedule-spec.js';

/** What `PUT /api/backups/config` may change; every field optional, nothing else allowed. */
export const settingsPatchSchema = z
  .object({
    autoBackupEnabled: z.boolean(),
    autoBackupInterval: z.number().int().min(MIN_AUTO_BACKUP_INTERVAL).max(MAX_AUTO_BACKUP_INTERVAL),
    maxBackups: z.number().int().min(1).max(100_000),
    /** Queue a full verification of every backup as soon as it completes. */
    verifyAfterBackup: z.boolean(),
    /** When to verify every kept backup (the runbook's weekly check). */
    verifySchedule: verifyScheduleSchema,
    /** When to run a restore drill of the WAL archive (RESTORE_DRILL_SCHEDULE). */
    restoreDrillSchedule: verifyScheduleSchema,
    /** Continuous WAL archiving (the database must be in WAL mode). */
    walArchiveEnabled: z.boolean(),
    walArchiveInterval: z.number().int().min(MIN_WAL_ARCHIVE_INTERVAL).max(MAX_WAL_ARCHIVE_INTERVAL),
    walRetention: z.number().int().min(MIN_WAL_RETENTION).max(MAX_WAL_RETENTION),
  })
  .partial()
  .strict();

export type SettingsPatch = z.infer<typeof settingsPatchSchema>;
export type Settings = Required<SettingsPatch>;

const KEY = 'runtime-config';

/**
 * The settings in force: the environment's values, overlaid with whatever was stored through the
 * API. They live in the catalog so they survive a restart of every process (Redis keeps nothing).
 */
export function currentSettings(config: Config, catalog: Catalog): Settings {
  return inForce(config, validPatch(catalog.getSetting<unknown>(KEY)));
}

function inForce(config: Config, stored: SettingsPatch): Settings {
  return {
    autoBackupEnabled: config.autoBackupEnabled,
    autoBackupInterval: config.autoBackupInterval,
    maxBackups: config.maxBackups,
    verifyAfterBackup: config.verifyAfterBackup,
    verifySchedule: config.verifySchedule,
    restoreDrillSchedule: config.restoreDrillSchedule,
    walArchiveEnabled: config.walArchiveEnabled,
    walArchiveInterval: config.walArchiveInterval,
    walRetention: config.walRetention,
    ...stored,
  };
}

/**
 * What was stored through the API, less any field today's rules reject (a schedule accepted by an
 * older version that never fires, say): that field falls back to the environment's value, and the
 * other stored fields stay in force instead of all of them being dropped.
 */
function validPatch(stored: unknown): SettingsPatch {
  const raw = stored ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
  const kept: Record<string, unknown> = { ...raw };
  for (let attempt = 0; attempt <= Object.keys(settingsPatchSchema.shape).length; attempt++) {
    const parsed = settingsPatchSchema.safeParse(kept);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') for (const k of issue.keys) delete kept[k];
      else if (issue.path.length) delete kept[String(issue.path[0])];
      else return {};
    }
  }
  return {};
}

export function updateSettings(config: Config, catalog: Catalog, patch: SettingsPatch): Settings {
  const stored = catalog.updateSetting(KEY, (before) => ({ ...validPatch(before), ...patch }));
  return inForce(config, validPatch(stored));
}
