import type { Redis } from 'ioredis';
import type { AlertSender } from '../shared/observability/alerts.js';
import type { Catalog } from '../shared/catalog/catalog.js';
import type { Config } from '../shared/runtime/config.js';
import type { Logger } from '../shared/runtime/logger.js';
import type { OpsMetrics } from '../shared/observability/metrics.js';
import type { Queues } from '../shared/jobs/queues.js';

/** What the HTTP side is built from; tests pass real ones. */
export interface ProducerDeps {
  config: Config;
  catalog: Catalog;
  queues: Queues;
  redis: Redis;
  log: Logger;
  apiToken: string;
  /** When this producer started: the reference for "no backup yet" in health checks. */
  startedAt: Date;
  /** This process's metrics and alert sender (the watchdog's overdue alerts). */
  ops: { metrics: OpsMetrics; alerts: AlertSender };
}
