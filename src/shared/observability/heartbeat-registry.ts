import type { Redis } from 'ioredis';
import type { MetricsSnapshot } from './metrics.js';

/**
 * Worker heartbeats. Each worker process keeps one key that expires unless it is rewritten, so a
 * worker that dies (even by SIGKILL) drops out of the count on its own after `ttl`; the set only
 * lets readers find the keys without scanning a shared Redis. Expiry is Redis's clock, so clocks
 * of different hosts need not agree.
 */
export interface Heartbeat {
  workerId: string;
  pid: number;
  host: string;
  startedAt: string;
  beatAt: string;
  queues: string[];
  /** The worker's own metrics (counters, histograms), summed by the producer's `/metrics`. */
  metrics: MetricsSnapshot;
}

const setKey = (prefix: string) => `${prefix}:ops:workers`;
const workerKey = (prefix: string, workerId: string) => `${prefix}:ops:worker:${workerId}`;

export async function writeHeartbeat(redis: Redis, prefix: string, beat: Heartbeat, ttlMs: number): Promise<void> {
  await redis.multi().set(workerKey(prefix, beat.workerId), JSON.stringify(beat), 'PX', ttlMs).sadd(setKey(prefix), beat.workerId).exec();
}

/** A worker that stops cleanly leaves at once instead of after its TTL. */
export async function removeHeartbeat(redis: Redis, prefix: string, workerId: string): Promise<void> {
  await redis.multi().del(workerKey(prefix, workerId)).srem(setKey(prefix), workerId).exec();
}

/** The workers whose heartbeat has not expired; forgets the ones that have. */
export async function liveWorkers(redis: Redis, prefix: string): Promise<Heartbeat[]> {
  const ids = await redis.smembers(setKey(prefix));
  if (ids.length === 0) return [];
  const values = await redis.mget(...ids.map((id) => workerKey(prefix, id)));
  const live: Heartbeat[] = [];
  const gone: string[] = [];
  values.forEach((value, i) => {
    if (value === null) gone.push(ids[i]!);
    else {
      try {
        live.push(JSON.parse(value) as Heartbeat);
      } catch {
        gone.push(ids[i]!);
      }
    }
  });
  if (gone.length) await redis.srem(setKey(prefix), ...gone);
  return live;
}
