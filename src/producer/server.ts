import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import { pathToFileURL } from 'node:url';
import { codeOf } from '../shared/domain/errors.js';
import { resolveApiToken } from '../shared/runtime/api-token.js';
import type { Config } from '../shared/runtime/config.js';
import { ensurePrivateDir } from '../shared/runtime/files.js';
import type { Logger } from '../shared/runtime/logger.js';
import { openCatalog } from '../shared/operations/open-catalog.js';
import { createQueues } from '../shared/jobs/queues.js';
import { producerRedis, waitForRedis, workerRedis } from '../shared/runtime/redis.js';
import { alertSenderFor } from '../shared/observability/alerts.js';
import { createOpsMetrics } from '../shared/observability/metrics.js';
import { runService } from '../shared/runtime/service-main.js';
import { syncSchedules } from '../shared/jobs/scheduler.js';
import { currentSettings } from '../shared/catalog/settings.js';
import { createApp, type ProducerDeps } from './app.js';
import { startWatchdog } from './watchdog.js';
import { errorBody } from './error-handler.js';

/**
 * Requests Node's HTTP parser rejects before Express sees them (conflicting Content-Length
 * headers, a malformed request line, oversized headers) still get the API's one JSON error shape.
 */
function answerClientError(err: Error, socket: Duplex): void {
  if (!socket.writable) return;
  const tooLarge = codeOf(err) === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const body = JSON.stringify(
    errorBody(tooLarge ? 'headers_too_large' : 'malformed_request', tooLarge ? 'request headers are too large' : 'malformed HTTP request'),
  );
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `X-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'none'\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * A Redis that restarts without persistence comes back empty: the auto-backup scheduler is gone
 * with everything else. Every reconnect therefore puts the schedule back from the catalog's
 * settings. (The connection watcher in redis.ts already logs the outage and the recovery.)
 */
function resyncAutoBackup(redis: Redis, sync: () => Promise<unknown>, log: Logger): { stop(): void } {
  let lost = false;
  let stopped = false;
  redis.on('close', () => {
    lost = true;
  });
  redis.on('ready', () => {
    if (!lost || stopped) return;
    lost = false;
    sync().catch((err: unknown) => log.error({ err }, 'could not restore the auto-backup schedule after reconnecting'));
  });
  return {
    stop() {
      stopped = true;
    },
  };
}

export interface RunningProducer {
  server: Server;
  deps: ProducerDeps;
  url: string;
  close(): Promise<void>;
}

/** Connects, brings the auto-backup schedule in line with the stored settings, and listens. */
export async function startProducer(config: Config, log: Logger): Promise<RunningProducer> {
  await ensurePrivateDir(config.backupDir);
  // Before anything connects: an unusable token file stops the start with one line naming it.
  const token = resolveApiToken(config);
  if (token.source !== 'env') log.info({ tokenFile: token.file }, `API token read from ${token.file} (API_TOKEN is not set)`);
  for (const warning of token.warnings) log.warn({ tokenFile: token.file }, warning);
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
  const resync = resyncAutoBackup(redis, () => syncSchedules(queues, currentSettings(config, catalog)), log);

  const metrics = createOpsMetrics();
  const alerts = alertSenderFor(config, log, metrics);
  const deps: ProducerDeps = {
    config,
    catalog,
    queues,
    redis,
    log,
    apiToken: token.token,
    startedAt: new Date(),
    ops: { metrics, alerts },
  };
  const app = createApp(deps);
  const watchdog = startWatchdog(deps);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
  });
  server.on('clientError', answerClientError);
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
        // Stop accepting; idle keep-alive sockets go now, requests in flight finish first.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await closed;
        resync.stop();
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

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // BullMQ's waitUntilFinished polls Redis inside a promise executor, so a Redis outage at that
  // moment surfaces as an unhandled rejection: log it instead of letting it end the process.
  void runService('producer', startProducer, { stopping: 'draining requests', survivesUnhandledRejections: true });
}
