import type { ProducerDeps } from './deps.js';
import { walStatus } from '../shared/wal/wal-health.js';
import { offsiteProblem, offsiteState } from '../shared/wal/offsite.js';
import { recoveryWindow } from '../shared/wal/window.js';

const WAL_SPELL = 'wal-lagging-since';
import { observe } from './health-facts.js';
import { formatDuration, overdueBy } from './health-rules.js';

/** Since when a restore from the mirror alone has been too far behind (`mirror.lagging`); null between spells. */
export const OFFSITE_SPELL = 'offsite-lagging-since';

/**
 * Watches for automatic backups that stopped happening — the failure no job can report, since
 * the job never ran (no worker alive, scheduler gone, Redis lost its data). It runs in the
 * producer, which serves `/health` anyway. One alert per overdue spell: the Redis key names the
 * last successful backup, so every producer of a deployment agrees on whether it was sent, and a
 * new success starts a new spell.
 */
export function startWatchdog(deps: ProducerDeps): { stop(): void } {
  const { config, redis } = deps;
  const log = deps.log.child({ component: 'watchdog' });
  const checkWal = () => {
    const wal = walStatus(config, deps.catalog);
    if (!wal.enabled) return;
    // One alert per spell, agreed on by every producer through the catalog.
    const lagging = wal.problem !== null;
    let starts = false;
    deps.catalog.updateSetting<string | null>(WAL_SPELL, (stored) => {
      if (!lagging) return null;
      if (stored) return stored as string;
      starts = true;
      return new Date().toISOString();
    });
    if (!starts) return;
    log.warn({ lagSeconds: wal.lagSeconds }, wal.problem!);
    deps.ops.alerts.send({ event: 'wal.lagging', summary: 'WAL archiving is not keeping up', reason: wal.problem! });
  };
  const checkOffsite = () => {
    const now = Date.now();
    const window = recoveryWindow(deps.catalog, now);
    const offsite = offsiteState(config, deps.catalog, now, window);
    const problem = offsiteProblem(offsite, window, now);
    if (problem === null && !deps.catalog.getSetting<string | null>(OFFSITE_SPELL)) return;
    // One alert per spell, as for the WAL lag; the spell ends when the lag is back under the threshold.
    let starts = false;
    deps.catalog.updateSetting<string | null>(OFFSITE_SPELL, (stored) => {
      if (problem === null) return null;
      if (stored) return stored as string;
      starts = true;
      return new Date(now).toISOString();
    });
    if (!starts || !offsite) return;
    log.warn({ offsite }, problem!);
    deps.ops.alerts.send({
      event: 'mirror.lagging',
      summary: 'a restore from the mirror alone is too far behind: losing this host would lose more than OFFSITE_LAG_ALERT',
      reason: problem!,
      data: offsite,
    });
  };
  const check = async () => {
    if (!deps.ops.alerts.enabled) return;
    checkWal();
    checkOffsite();
    const { facts, lastBackup } = await observe(deps);
    const late = overdueBy(facts);
    if (late === null || !facts.redisUp) return;
    const spell = `${config.queuePrefix}:ops:overdue-alerted:${lastBackup?.id ?? `none-${deps.startedAt.getTime()}`}`;
    const first = await redis.set(spell, new Date().toISOString(), 'PX', 30 * 24 * 3_600_000, 'NX');
    if (first !== 'OK') return;
    const since = facts.lastSuccessAt ?? facts.watchingSince;
    const age = formatDuration(facts.now.getTime() - since.getTime());
    const reason = facts.lastSuccessAt
      ? `the last successful backup finished ${age} ago; automatic backups run every ${formatDuration(facts.autoBackupInterval)}`
      : `no backup has succeeded in ${age}; automatic backups run every ${formatDuration(facts.autoBackupInterval)}`;
    log.warn({ lateMs: late, workersAlive: facts.workersAlive }, `automatic backups are overdue: ${reason}`);
    deps.ops.alerts.send({
      event: 'backup.overdue',
      summary: 'automatic backups are overdue',
      reason: facts.workersAlive === 0 ? `${reason}; no worker process is alive` : reason,
      lastSuccessfulBackup: facts.lastSuccessAt?.toISOString() ?? null,
      ...(lastBackup ? { backupId: lastBackup.id } : {}),
    });
  };
  let running = false;
  const period = () =>
    Math.min(60_000, Math.max(1_000, Math.floor(config.autoBackupInterval / 2)), Math.max(1_000, config.walArchiveInterval * 5));
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    check()
      .catch((err: Error) => log.warn({ err }, 'overdue check failed'))
      .finally(() => {
        running = false;
      });
  }, period());
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
