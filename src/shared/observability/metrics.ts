import { AggregatorRegistry, Counter, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { BACKUP_TYPES } from '../domain/backup-types.js';
import { QUEUE_NAMES } from '../jobs/queues.js';

export const METRIC_PREFIX = 'workstation_backup_';

/** Seconds: a small verify takes a fraction of one, a large restore many minutes. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/**
 * What happens inside a process: job outcomes, durations, lock waits, alerts. Each worker keeps
 * its own set and publishes a snapshot with its heartbeat; the producer adds the snapshots of the
 * live workers to its own set (prom-client's cluster aggregation), so `/metrics` shows the whole
 * fleet however many worker processes there are. Every known label combination starts at zero,
 * so a counter exists from the first scrape instead of appearing after its first event.
 */
export function createOpsMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const backups = new Counter({
    name: `${METRIC_PREFIX}backups_total`,
    help: 'Backup attempts by backup type and outcome (completed or failed)',
    labelNames: ['type', 'status'] as const,
    registers,
  });
  const verifications = new Counter({
    name: `${METRIC_PREFIX}verifications_total`,
    help: 'Verification attempts by result (valid, invalid, or error when the check itself failed)',
    labelNames: ['result'] as const,
    registers,
  });
  const restores = new Counter({
    name: `${METRIC_PREFIX}restores_total`,
    help: 'Restore attempts by outcome (completed or failed)',
    labelNames: ['status'] as const,
    registers,
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}job_duration_seconds`,
    help: 'Duration of backup, verify and restore attempts, by queue and outcome',
    labelNames: ['queue', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const lockWaits = new Counter({
    name: `${METRIC_PREFIX}lock_waits_total`,
    help: 'Times a job found the database lock taken and was put back to wait',
    labelNames: ['queue'] as const,
    registers,
  });
  const jobsFailed = new Counter({
    name: `${METRIC_PREFIX}jobs_failed_total`,
    help: 'Jobs that failed for good (retries spent or a permanent error), by queue',
    labelNames: ['queue'] as const,
    registers,
  });
  const alerts = new Counter({
    name: `${METRIC_PREFIX}alerts_total`,
    help: 'Alerts for the webhook by outcome (delivered, or dropped after every attempt failed)',
    labelNames: ['outcome'] as const,
    registers,
  });

  for (const type of BACKUP_TYPES) for (const status of ['completed', 'failed']) backups.inc({ type, status }, 0);
  for (const result of ['valid', 'invalid', 'error']) verifications.inc({ result }, 0);
  for (const status of ['completed', 'failed']) restores.inc({ status }, 0);
  for (const queue of QUEUE_NAMES) {
    lockWaits.inc({ queue }, 0);
    jobsFailed.inc({ queue }, 0);
  }
  for (const outcome of ['delivered', 'dropped']) alerts.inc({ outcome }, 0);

  return { registry, backups, verifications, restores, duration, lockWaits, jobsFailed, alerts };
}

export type OpsMetrics = ReturnType<typeof createOpsMetrics>;

/** Sums snapshots of the same metrics from several processes into one registry. */
export function aggregate(snapshots: MetricsSnapshot[]): Registry {
  return AggregatorRegistry.aggregate(snapshots as Parameters<typeof AggregatorRegistry.aggregate>[0]);
}
