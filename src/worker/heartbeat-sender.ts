import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { removeHeartbeat, writeHeartbeat, type Heartbeat } from '../shared/observability/heartbeat-registry.js';
import type { Logger } from '../shared/runtime/logger.js';
import type { MetricsSnapshot } from '../shared/observability/metrics.js';

export interface HeartbeatOptions {
  redis: Redis;
  prefix: string;
  workerId: string;
  intervalMs: number;
  queues: string[];
  metrics: () => Promise<MetricsSnapshot>;
  log: Logger;
}

/**
 * Tells the producer this worker process is alive and taking jobs, and hands it the process's
 * metrics. The key lives three intervals, so one late beat under load does not count the worker
 * as dead.
 */
export async function startHeartbeat(opts: HeartbeatOptions): Promise<{ stop(): Promise<void> }> {
  const log = opts.log.child({ component: 'heartbeat' });
  const startedAt = new Date().toISOString();
  const beat = async () => {
    const body: Heartbeat = {
      workerId: opts.workerId,
      pid: process.pid,
      host: hostname(),
      startedAt,
      beatAt: new Date().toISOString(),
      queues: opts.queues,
      metrics: await opts.metrics(),
    };
    await writeHeartbeat(opts.redis, opts.prefix, body, opts.intervalMs * 3);
  };
  await beat();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = beat().catch((err: Error) => {
      if (!stopped) log.warn({ err }, 'heartbeat not written (Redis unreachable?)');
    });
  }, opts.intervalMs);
  timer.unref();
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await removeHeartbeat(opts.redis, opts.prefix, opts.workerId).catch(() => undefined);
    },
  };
}
