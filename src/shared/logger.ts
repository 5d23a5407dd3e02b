import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/** Paths that may hold a secret; pino replaces their values before a line is written. */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'apiToken',
  'config.apiToken',
  '*.apiToken',
];

/** The root logger of a process: JSON lines to stdout, one `service` field per process. */
export function createLogger(config: Pick<Config, 'logLevel'>, service: string): Logger {
  return pino({
    level: config.logLevel,
    base: { service, pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
