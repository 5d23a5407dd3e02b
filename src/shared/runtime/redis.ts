import { Redis, type RedisOptions } from 'ioredis';
import { messageOf } from '../domain/errors.js';
import type { Logger } from './logger.js';

/**
 * One log line when an established connection drops and one when it is back, instead of
 * ioredis's line per reconnection attempt. Before the first connection, errors surface through
 * `waitForRedis`.
 */
function watch(client: Redis, log?: Logger): Redis {
  let wasReady = false;
  let down = false;
  client.on('error', (err: Error) => {
    if (wasReady && !down) {
      down = true;
      log?.warn({ err }, 'Redis connection lost; reconnecting');
    }
  });
  client.on('ready', () => {
    if (down) log?.info('Redis connection restored');
    wasReady = true;
    down = false;
  });
  return client;
}

/**
 * Connections by role. The producer answers HTTP requests, so it must fail fast when Redis is away
 * (a clear 503 instead of a request hanging); workers and queue listeners wait and reconnect.
 */
export function producerRedis(url: string, log?: Logger, extra: RedisOptions = {}): Redis {
  return watch(
    new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      ...extra,
    }),
    log,
  );
}

export function workerRedis(url: string, log?: Logger, extra: RedisOptions = {}): Redis {
  return watch(
    new Redis(url, {
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      ...extra,
    }),
    log,
  );
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
  throw new Error(`Redis is unreachable at ${safeUrl}${last ? ` (${messageOf(last)})` : ''}`, last ? { cause: last } : undefined);
}
