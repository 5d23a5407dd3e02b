import { formatBytes } from '../shared/domain/format.js';

/** What `/health` and the overdue watchdog decide from; gathered by `health-facts.ts`. */
export interface HealthFacts {
  now: Date;
  redisUp: boolean;
  database: { reachable: boolean; journalMode: string | null; sizeBytes: number | null };
  /** Live worker processes by heartbeat; null when Redis could not be asked. */
  workersAlive: number | null;
  autoBackupEnabled: boolean;
  autoBackupInterval: number;
  /** When the last backup completed, or null if none ever did. */
  lastSuccessAt: Date | null;
  /** Counted from when there was never a successful backup: when this producer started. */
  watchingSince: Date;
  freeBytes: number | null;
  neededBytes: number | null;
  /** Why the newest backup found the live database damaged, until a backup or restore succeeds after it. */
  databaseDamage: string | null;
  /** Whether a file can be written in BACKUP_DIR; null when the probe did not answer, undefined where not probed. */
  backupDirWritable?: boolean | null;
  /** Why copies to the mirror keep failing (a sentence), or null while they succeed; undefined where not looked at. */
  mirrorOutage?: string | null;
  /** Why WAL archiving is not keeping up (not in WAL mode, no archiver, lagging), or null. */
  walProblem?: string | null;
  /** Why a restore from the mirror alone falls too far behind (OFFSITE_LAG_ALERT), or null. */
  offsiteProblem?: string | null;
  /** Why the last restore drill failed (a sentence), or null when it passed or none ran. */
  drillProblem?: string | null;
}

export type HealthStatus = 'ok' | 'degraded' | 'down';

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1_000);
  if (s < 120) return `${s} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3_600)} h`;
  return `${Math.round(s / 86_400)} days`;
}

/**
 * Automatic backups are overdue when the last success (or, with none yet, the start of watching)
 * is older than twice the interval: one missed run is tolerated, two are not.
 */
export function overdueBy(
  f: Pick<HealthFacts, 'now' | 'autoBackupEnabled' | 'autoBackupInterval' | 'lastSuccessAt' | 'watchingSince'>,
): number | null {
  if (!f.autoBackupEnabled) return null;
  const since = f.lastSuccessAt ?? f.watchingSince;
  const late = f.now.getTime() - since.getTime() - 2 * f.autoBackupInterval;
  return late > 0 ? late : null;
}

/**
 * `down` when Redis is unreachable (nothing can be queued); `degraded` when backups are at risk
 * though the service answers; `ok` otherwise. Each problem is one sentence an operator can act on.
 */
export function assessHealth(f: HealthFacts): { status: HealthStatus; problems: string[] } {
  const problems: string[] = [];
  if (!f.redisUp) problems.push('Redis is unreachable: no backup, verify or restore can be queued');
  if (!f.database.reachable) problems.push('the database file cannot be opened');
  // Before the other backup problems: the one where the operator must act now, before the good
  // backups age out.
  if (f.databaseDamage) problems.push(f.databaseDamage);
  if (f.backupDirWritable === false) problems.push('BACKUP_DIR cannot be written: no backup can be taken until it is fixed');
  if (f.mirrorOutage) problems.push(f.mirrorOutage);
  if (f.walProblem) problems.push(f.walProblem);
  if (f.offsiteProblem) problems.push(f.offsiteProblem);
  if (f.drillProblem) problems.push(f.drillProblem);
  if (f.workersAlive === 0) problems.push('no worker process is alive: queued jobs will wait');
  if (overdueBy(f) !== null) {
    const since = f.lastSuccessAt ?? f.watchingSince;
    problems.push(
      `${f.lastSuccessAt ? 'the last successful backup is' : 'no backup has succeeded in'} ${formatDuration(f.now.getTime() - since.getTime())}` +
        `${f.lastSuccessAt ? ' old' : ''}, while automatic backups run every ${formatDuration(f.autoBackupInterval)}`,
    );
  }
  if (f.freeBytes !== null && f.neededBytes !== null && f.freeBytes < f.neededBytes) {
    problems.push(
      `free space in BACKUP_DIR (${formatBytes(f.freeBytes)}) is below what the next backup needs (${formatBytes(f.neededBytes)})`,
    );
  }
  const status: HealthStatus = !f.redisUp ? 'down' : problems.length ? 'degraded' : 'ok';
  return { status, problems };
}
