import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig, type Config } from '../../src/shared/runtime/config.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** A temp directory and a unique BullMQ prefix for one test file, with everything needed to clean up. */
export interface Sandbox {
  dir: string;
  prefix: string;
  env: Record<string, string>;
  config: Config;
  /** The same sandbox with some variables changed. */
  with(extra: Record<string, string>): { env: Record<string, string>; config: Config };
  cleanup(): Promise<void>;
}

/** Variables a sandbox adds or changes; a function of its directory for those naming a place in it. */
export type SandboxEnv = Record<string, string> | ((dir: string) => Record<string, string>);

export function sandbox(name: string, extraEnv: SandboxEnv = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wb-${name}-`));
  const extra = typeof extraEnv === 'function' ? extraEnv(dir) : extraEnv;
  const prefix = `wbtest-${name}-${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    BACKUP_DIR: path.join(dir, 'backups'),
    DATABASE_PATH: path.join(dir, 'workstation.db'),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    API_TOKEN: TEST_TOKEN,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    JOB_BACKOFF: '200',
    LOCK_RETRY_DELAY: '200',
    ...extra,
  };
  return {
    dir,
    prefix,
    env,
    config: parseConfig(env),
    with(more) {
      const merged = { ...env, ...more };
      return { env: merged, config: parseConfig(merged) };
    },
    async cleanup() {
      await deletePrefix(prefix);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Removes every Redis key under a BullMQ prefix (the shared Redis outlives the tests). */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Sets `vars` in this process's environment and returns what puts the previous values back (one
 * that was unset is removed again). For what runs in the test's own process: an S3Storage there
 * takes its credentials from the SDK's default chain, which reads them from here.
 */
export function setProcessEnv(vars: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

export async function waitUntil<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
