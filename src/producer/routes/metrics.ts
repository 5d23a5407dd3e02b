import { Router } from 'express';
import { Gauge, Registry } from 'prom-client';
import { walStatus } from '../../shared/wal/wal-health.js';
import { recoveryWindow } from '../../shared/wal/window.js';
import { offsiteState } from '../../shared/wal/offsite.js';
import { BACKUP_TYPES } from '../../shared/domain/backup-types.js';
import { METRIC_PREFIX, aggregate, type OpsMetrics } from '../../shared/observability/metrics.js';
import type { ProducerDeps } from '../deps.js';
import { requireAnyBearer } from '../auth.js';
import { observe, type Observed } from '../health-facts.js';
import { overdueBy } from '../health-rules.js';

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

/**
 * The producer's own gauges, read when scraped: the catalog is the record of backups (so these
 * survive restarts of every process), BullMQ of the queues, heartbeats of the workers.
 */
function stateGauges(deps: ProducerDeps) {
  const registry = new Registry();
  const registers = [registry];
  const { catalog, queues } = deps;

  const lastSize = new Gauge({
    name: `${METRIC_PREFIX}last_backup_size_bytes`,
    help: 'File size of the newest completed backup',
    registers,
  });
  const lastSuccess = new Gauge({
    name: `${METRIC_PREFIX}last_success_timestamp_seconds`,
    help: 'When the newest completed backup finished (Unix time); 0 if none ever did',
    registers,
  });
  const catalogBackups = new Gauge({
    name: `${METRIC_PREFIX}catalog_backups`,
    help: 'Backups in the catalog by type and status (completed ones are those kept by retention)',
    labelNames: ['type', 'status'] as const,
    registers,
  });
  const queueJobs = new Gauge({
    name: `${METRIC_PREFIX}queue_jobs`,
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'] as const,
    registers,
  });
  const workersAlive = new Gauge({ name: `${METRIC_PREFIX}workers_alive`, help: 'Worker processes with a live heartbeat', registers });
  const redisUp = new Gauge({ name: `${METRIC_PREFIX}redis_up`, help: '1 when Redis answers, else 0', registers });
  const freeBytes = new Gauge({ name: `${METRIC_PREFIX}backup_dir_free_bytes`, help: 'Free space in BACKUP_DIR', registers });
  const neededBytes = new Gauge({
    name: `${METRIC_PREFIX}backup_needed_bytes`,
    help: 'Space the next backup needs in BACKUP_DIR (database size, twice that when compressing)',
    registers,
  });
  const overdue = new Gauge({ name: `${METRIC_PREFIX}backup_overdue`, help: '1 when automatic backups are on and overdue', registers });
  const wal = {
    enabled: new Gauge({ name: `${METRIC_PREFIX}wal_archive_enabled`, help: '1 when WAL archiving is on', registers }),
    running: new Gauge({ name: `${METRIC_PREFIX}wal_archiver_running`, help: '1 when an archiver reported recently', registers }),
    lag: new Gauge({
      name: `${METRIC_PREFIX}wal_lag_seconds`,
      help: 'Seconds since every commit was last stored in the archive',
      registers,
    }),
    lagBytes: new Gauge({ name: `${METRIC_PREFIX}wal_lag_bytes`, help: 'Bytes of committed WAL frames not archived yet', registers }),
    walBytes: new Gauge({ name: `${METRIC_PREFIX}wal_file_bytes`, help: "Size of the database's -wal file", registers }),
    generation: new Gauge({ name: `${METRIC_PREFIX}wal_generation`, help: 'The WAL archive generation being written', registers }),
    segments: new Gauge({ name: `${METRIC_PREFIX}wal_segments`, help: 'Segments the WAL archive holds', registers }),
    bytes: new Gauge({ name: `${METRIC_PREFIX}wal_archive_bytes`, help: 'Bytes the WAL archive holds', registers }),
    earliest: new Gauge({
      name: `${METRIC_PREFIX}recovery_window_earliest_timestamp_seconds`,
      help: 'The earliest moment the WAL archive can restore to (0: none)',
      registers,
    }),
    latest: new Gauge({
      name: `${METRIC_PREFIX}recovery_window_latest_timestamp_seconds`,
      help: 'The latest moment the WAL archive can restore to (0: none)',
      registers,
    }),
  };

  // What a restore from the mirror alone reaches (src/shared/wal/offsite.ts); 0 without a mirror or with archiving off.
  const offsite = {
    lag: new Gauge({
      name: `${METRIC_PREFIX}offsite_lag_seconds`,
      help: 'Seconds since the latest moment a restore from the mirror alone reaches (0: unknown, see offsite_latest_timestamp_seconds)',
      registers,
    }),
    latest: new Gauge({
      name: `${METRIC_PREFIX}offsite_latest_timestamp_seconds`,
      help: 'The latest moment a restore from the mirror alone reaches (0: none)',
      registers,
    }),
    unmirrored: new Gauge({
      name: `${METRIC_PREFIX}offsite_unmirrored_segments`,
      help: 'WAL archive segments the mirror lacks',
      registers,
    }),
  };

  const drill = {
    lastSuccess: new Gauge({
      name: `${METRIC_PREFIX}restore_drill_last_success_timestamp_seconds`,
      help: 'When the last restore drill that passed finished (Unix time); 0 if none did',
      registers,
    }),
    lastDuration: new Gauge({
      name: `${METRIC_PREFIX}restore_drill_last_duration_seconds`,
      help: 'How long the last restore drill took to restore the latest point: the measured RTO',
      registers,
    }),
    lastOk: new Gauge({
      name: `${METRIC_PREFIX}restore_drill_last_ok`,
      help: '1 when the last restore drill passed, 0 when it failed or none ran',
      registers,
    }),
  };

  return {
    registry,
    async refresh(o: Observed) {
      lastSize.set(o.lastBackup?.file_size_bytes ?? 0);
      lastSuccess.set(o.facts.lastSuccessAt ? o.facts.lastSuccessAt.getTime() / 1_000 : 0);
      catalogBackups.reset();
      for (const type of BACKUP_TYPES) for (const status of ['in_progress', 'completed', 'failed']) catalogBackups.set({ type, status }, 0);
      const rows = catalog.backupCounts();
      for (const r of rows) catalogBackups.set({ type: r.type, status: r.status }, r.n);
      redisUp.set(o.facts.redisUp ? 1 : 0);
      workersAlive.set(o.facts.workersAlive ?? 0);
      if (o.facts.freeBytes !== null) freeBytes.set(o.facts.freeBytes);
      if (o.facts.neededBytes !== null) neededBytes.set(o.facts.neededBytes);
      overdue.set(overdueBy(o.facts) !== null ? 1 : 0);
      const w = walStatus(deps.config, catalog);
      wal.enabled.set(w.enabled ? 1 : 0);
      wal.running.set(w.running ? 1 : 0);
      wal.lag.set(w.lagSeconds ?? 0);
      wal.lagBytes.set(w.lagBytes ?? 0);
      wal.walBytes.set(w.walBytes ?? 0);
      wal.generation.set(w.generation ?? 0);
      wal.segments.set(w.segments);
      wal.bytes.set(w.bytes);
      const lastDrill = catalog.drills.lastDrill();
      const lastGoodDrill = catalog.drills.lastSuccessfulDrill();
      drill.lastSuccess.set(lastGoodDrill ? Date.parse(lastGoodDrill.completed_at) / 1_000 : 0);
      drill.lastDuration.set(lastDrill ? lastDrill.duration_ms / 1_000 : 0);
      drill.lastOk.set(lastDrill?.ok ?? 0);
      const window = recoveryWindow(catalog);
      wal.earliest.set(window.earliest ? Date.parse(window.earliest) / 1_000 : 0);
      wal.latest.set(window.latest ? Date.parse(window.latest) / 1_000 : 0);
      const off = offsiteState(deps.config, catalog, Date.now(), window);
      offsite.lag.set(off?.lagSeconds ?? 0);
      offsite.latest.set(off?.latest ? Date.parse(off.latest) / 1_000 : 0);
      offsite.unmirrored.set(off?.unmirroredSegments ?? 0);
      queueJobs.reset();
      if (o.facts.redisUp) {
        await Promise.all(
          queues.all().map(async (q) => {
            const counts = await q.getJobCounts(...JOB_STATES);
            for (const state of JOB_STATES) queueJobs.set({ queue: q.name, state }, counts[state] ?? 0);
          }),
        );
      }
    },
  };
}

/**
 * `GET /metrics`: Prometheus text. The job counters and histograms are the sum of this process's
 * set (alerts it sent) and those of every live worker, published with their heartbeats. A worker
 * that stops takes its counts with it, which Prometheus's `rate()` reads as a counter reset.
 */
export function metricsRouter(deps: ProducerDeps & { ops: { metrics: OpsMetrics } }): Router {
  const router = Router();
  const gauges = stateGauges(deps);
  const tokens = [deps.apiToken, ...(deps.config.metricsToken ? [deps.config.metricsToken] : [])];
  router.use(requireAnyBearer(tokens));
  router.get('/', async (_req, res) => {
    const observed = await observe(deps);
    await gauges.refresh(observed);
    const fleet = aggregate([await deps.ops.metrics.registry.getMetricsAsJSON(), ...observed.workers.map((w) => w.metrics)]);
    const merged = Registry.merge([fleet, gauges.registry]);
    res.setHeader('Content-Type', merged.contentType);
    res.send(await merged.metrics());
  });
  return router;
}
