import { ConfigError } from '../domain/errors.js';
import { loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';

export interface Stoppable {
  close(): Promise<void>;
}

/**
 * The one start-up and shutdown path of a long-running process: configuration (a bad value is
 * one line on stderr and exit 2), start (a failure is one fatal log line and exit 1), then
 * SIGTERM/SIGINT: stop within SHUTDOWN_TIMEOUT and exit 0; a second signal exits at once.
 */
export async function runService(
  service: string,
  start: (config: Config, log: Logger) => Promise<Stoppable>,
  { stopping, survivesUnhandledRejections = false }: { stopping: string; survivesUnhandledRejections?: boolean },
): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config, service);
  if (survivesUnhandledRejections) {
    process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  }
  let running: Stoppable;
  try {
    running = await start(config, log);
  } catch (err) {
    log.fatal({ err }, (err as Error).message);
    process.exit(1);
  }
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    log.info({ signal, timeoutMs: config.shutdownTimeout }, `shutting down: ${stopping}`);
    setTimeout(() => {
      log.error('shutdown timed out; exiting with work still running (queued jobs are picked up again)');
      process.exit(1);
    }, config.shutdownTimeout).unref();
    void running.close().then(() => {
      log.info(`${service} stopped`);
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
