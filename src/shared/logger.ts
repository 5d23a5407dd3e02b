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
  'metricsToken',
  '*.metricsToken',
  'alertWebhookUrl',
  '*.alertWebhookUrl',
];

/**
 * The root logger of a process: JSON lines to stdout, one `service` field per process. With
 * LOG_FILE the same lines are appended to that file as well (the runbook greps
 * `logs/combined.log`); every process of a deployment may share one file, as each line is a single
 * append. Writes are synchronous so the last lines before an exit are not lost.
 */
export function createLogger(config: Pick<Config, 'logLevel'> & { logFile?: string | undefined }, service: string): Logger {
  const options = {
    level: config.logLevel,
    base: { service, pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (!config.logFile) return pino(options);
  const file = pino.destination({ dest: config.logFile, mkdir: true, append: true, sync: true });
  return pino(
    options,
    pino.multistream([
      { stream: process.stdout, level: config.logLevel === 'silent' ? 'fatal' : config.logLevel },
      { stream: file, level: config.logLevel === 'silent' ? 'fatal' : config.logLevel },
    ]),
  );
}
