import { Redis, type RedisOptions } from 'ioredis';

/**
 * Connections by role. The producer answers HTTP requests, so it must fail fast when Redis is away
 * (a clear 503 instead of a request hanging); workers and queue listeners wait and reconnect.
 */
export function producerRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
}

export function workerRedis(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  });
}

/** Resolves once Redis answers PING, or rejects with one clear sentence after `timeoutMs`. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (redis.status === 'ready' && (await redis.ping()) === 'PONG') return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const safeUrl = url.replace(/\/\/[^@]*@/, '//***@');
  throw new Error(`Redis is unreachable at ${safeUrl}${last ? ` (${(last as Error).message})` : ''}`);
}
