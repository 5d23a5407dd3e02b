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
  'encryptionKey',
  'config.encryptionKey',
  'config.decryptionKeys',
];

/**
 * The root logger of a process: JSON lines to stdout, one `service` field per process — or to
 * stderr (fd 2) for the CLI, whose stdout is its answer. With LOG_FILE the same lines are appended
 * to that file as well (the runbook greps `logs/combined.log`); every process of a deployment may
 * share one file, as each line is a single append. Writes are synchronous so the last lines before
 * an exit are not lost. Tests pass a `destination` to read what would have been logged.
 */
export function createLogger(
  config: Pick<Config, 'logLevel'> & { logFile?: string | undefined },
  service: string,
  fd: 1 | 2 = 1,
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    level: config.logLevel,
    base: { service, pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(options, destination);
  const screen = fd === 1 ? process.stdout : pino.destination({ fd, sync: true });
  if (!config.logFile) return fd === 1 ? pino(options) : pino(options, screen);
  const file = pino.destination({ dest: config.logFile, mkdir: true, append: true, sync: true });
  return pino(
    options,
    pino.multistream([
      { stream: screen, level: config.logLevel === 'silent' ? 'fatal' : config.logLevel },
      { stream: file, level: config.logLevel === 'silent' ? 'fatal' : config.logLevel },
    ]),
  );
}
