import type { Server } from 'node:http';
import { pathToFileURL } from 'node:url';
import { resolveApiToken } from '../shared/api-token.js';
import { ConfigError, loadConfig, type Config } from '../shared/config.js';
import { ensurePrivateDir } from '../shared/files.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { openCatalog } from '../shared/reindex.js';
import { createQueues } from '../shared/queues.js';
import { producerRedis, waitForRedis, workerRedis } from '../shared/redis.js';
import { AlertSender } from '../shared/alerts.js';
import { createOpsMetrics } from '../shared/metrics.js';
import { syncSchedules } from '../shared/scheduler.js';
import { currentSettings } from '../shared/settings.js';
import { createApp, type ProducerDeps } from './app.js';
import { startWatchdog } from './watchdog.js';

export interface RunningProducer {
  server: Server;
  deps: ProducerDeps;
  url: string;
  close(): Promise<void>;
}

/** Connects, brings the auto-backup schedule in line with the stored settings, and listens. */
export async function startProducer(config: Config, log: Logger): Promise<RunningProducer> {
  await ensurePrivateDir(config.backupDir);
  const redis = producerRedis(config.redisUrl, log);
  const events = workerRedis(config.redisUrl, log);
  try {
    await waitForRedis(redis, config.redisUrl, 5_000);
  } catch (err) {
    redis.disconnect();
    events.disconnect();
    throw err;
  }
  // A lost catalog is rebuilt from the backups' manifests before anything reads it.
  const { catalog } = await openCatalog(config, log);
  const queues = createQueues(config, redis, events, log);
  await Promise.all(Object.values(queues.events).map((e) => e.waitUntilReady()));
  await syncSchedules(queues, currentSettings(config, catalog));

  const token = resolveApiToken(config);
  if (token.source !== 'env') log.info({ tokenFile: token.file }, `API token read from ${token.file} (API_TOKEN is not set)`);

  const metrics = createOpsMetrics();
  const alerts = new AlertSender({
    url: config.alertWebhookUrl,
    attempts: config.alertAttempts,
    timeoutMs: config.alertTimeout,
    queuePrefix: config.queuePrefix,
    log: log.child({ component: 'alerts' }),
    onOutcome: (outcome) => metrics.alerts.inc({ outcome }),
  });
  const deps: ProducerDeps = { config, catalog, queues, redis, log, apiToken: token.token, startedAt: new Date(), ops: { metrics, alerts } };
  const app = createApp(deps);
  const watchdog = startWatchdog(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://127.0.0.1:${port}`;
  log.info({ port, url }, 'producer listening');

  let closing: Promise<void> | undefined;
  return {
    server,
    deps,
    url,
    close() {
      closing ??= (async () => {
        watchdog.stop();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await alerts.flush(Math.min(config.shutdownTimeout, 5_000));
        await queues.close();
        catalog.close();
        redis.disconnect();
        events.disconnect();
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
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
  const log = createLogger(config, 'producer');
  let running: RunningProducer;
  try {
    running = await startProducer(config, log);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, (err as Error).message);
    process.exit(1);
  }
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) process.exit(1);
    signalled = true;
    log.info({ signal }, 'shutting down: draining requests');
    setTimeout(() => process.exit(1), config.shutdownTimeout).unref();
    running.server.closeIdleConnections();
    void running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
