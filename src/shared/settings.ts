import { z } from 'zod';
import type { Catalog } from './catalog.js';
import { MAX_AUTO_BACKUP_INTERVAL, MIN_AUTO_BACKUP_INTERVAL, type Config } from './config.js';
import { formatSchedule, parseSchedule } from './schedule-spec.js';

/** `off`, milliseconds, or a cron pattern; stored in its canonical form. */
const verifySchedule = z
  .string()
  .max(200)
  .transform((v, ctx) => {
    try {
      return formatSchedule(parseSchedule(v));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** What `PUT /api/backups/config` may change; every field optional, nothing else allowed. */
export const settingsPatchSchema = z
  .object({
    autoBackupEnabled: z.boolean(),
    autoBackupInterval: z.number().int().min(MIN_AUTO_BACKUP_INTERVAL).max(MAX_AUTO_BACKUP_INTERVAL),
    maxBackups: z.number().int().min(1).max(100_000),
    /** Queue a full verification of every backup as soon as it completes. */
    verifyAfterBackup: z.boolean(),
    /** When to verify every kept backup (the runbook's weekly check). */
    verifySchedule,
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
  const stored = settingsPatchSchema.safeParse(catalog.getSetting(KEY) ?? {});
  return {
    autoBackupEnabled: config.autoBackupEnabled,
    autoBackupInterval: config.autoBackupInterval,
    maxBackups: config.maxBackups,
    verifyAfterBackup: config.verifyAfterBackup,
    verifySchedule: config.verifySchedule,
    ...(stored.success ? stored.data : {}),
  };
}

export function updateSettings(config: Config, catalog: Catalog, patch: SettingsPatch): Settings {
  // Immediate: read-then-write started deferred fails with SQLITE_BUSY, without waiting, when a
  // worker commits to the catalog in between (every backup does).
  return catalog.db
    .transaction(() => {
      const stored = settingsPatchSchema.safeParse(catalog.getSetting(KEY) ?? {});
      catalog.setSetting(KEY, { ...(stored.success ? stored.data : {}), ...patch });
      return currentSettings(config, catalog);
    })
    .immediate();
}
