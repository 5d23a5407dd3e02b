import fs from 'node:fs';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/shared/runtime/config.js';
import type { Row } from './table.js';

export const BENCH_TOKEN = 'bench-token-0123456789abcdef';
export const REDIS_URL = 'redis://127.0.0.1:6379';

export interface BenchOptions {
  quick: boolean;
  /** Size of the generated database. */
  sizeBytes: number;
  runs: number;
  /** The writer's commit interval. */
  writerEveryMs: number;
  /** Writer-only window measured before each run under load, the "no backup running" baseline. */
  baselineMs: number;
  /** Least time a comparison tool gets under load before it counts as "never finishes". */
  minToolTimeoutMs: number;
  /** Sequential requests per run for the queue latency numbers. */
  requests: number;
  /** Verify jobs per run for the throughput numbers. */
  verifyJobs: number;
  /** GET requests per run for the list latency numbers. */
  listRequests: number;
  workDir: string;
  keep: boolean;
}

/** One isolated service environment: its own directory, database, catalog and Redis prefix. */
export interface ServiceEnv {
  dir: string;
  prefix: string;
  env: Record<string, string>;
  config: Config;
  with(extra: Record<string, string>): Config;
}

export function serviceEnv(dir: string, prefix: string): ServiceEnv {
  fs.mkdirSync(dir, { recursive: true });
  const env: Record<string, string> = {
    BACKUP_DIR: path.join(dir, 'backups'),
    DATABASE_PATH: path.join(dir, 'workstation.db'),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    API_TOKEN: BENCH_TOKEN,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    // The benchmark deletes what it creates; retention would only add noise.
    MAX_BACKUPS: '100000',
    REQUEST_TIMEOUT: '3600000',
    RESTORE_BUSY_TIMEOUT: '300000',
    LOCK_RETRY_DELAY: '50',
  };
  return {
    dir,
    prefix,
    env,
    config: parseConfig(env),
    with: (extra) => parseConfig({ ...env, ...extra }),
  };
}

export interface Bench {
  opts: BenchOptions;
  rows: Row[];
  notes: string[];
  progress(message: string): void;
}
