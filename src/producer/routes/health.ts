import fs from 'node:fs/promises';
import { Router } from 'express';
import type { ProducerDeps } from '../deps.js';

/** `GET /health`: no token, no secrets. 503 when Redis is unreachable. */
export function healthRouter({ catalog, redis, config }: ProducerDeps): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    const redisUp = await Promise.race([
      redis.ping().then(
        (r) => r === 'PONG',
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), 1_000).unref()),
    ]);
    const databaseExists = await fs.access(config.databasePath).then(
      () => true,
      () => false,
    );
    const last = catalog.lastSuccessfulBackup();
    const status = !redisUp ? 'down' : databaseExists ? 'ok' : 'degraded';
    res.status(status === 'down' ? 503 : 200).json({
      status,
      timestamp: new Date().toISOString(),
      redis: { reachable: redisUp },
      database: { reachable: databaseExists },
      backups: {
        lastSuccessfulBackup: last?.completed_at ?? null,
        statistics: catalog.statistics(),
      },
    });
  });
  return router;
}
