import { Router } from 'express';
import { storageHealth } from '../../shared/mirror.js';
import type { ProducerDeps } from '../deps.js';
import { observe } from '../health-facts.js';
import { assessHealth, overdueBy } from '../health-rules.js';

/**
 * `GET /health`: no token, no secrets (no paths, URLs or tokens). 503 only when `down`, so a
 * container healthcheck restarts the producer for a lost Redis but not for a late backup, which
 * a restart would not fix; `degraded` says what needs a person.
 */
export function healthRouter(deps: ProducerDeps): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    const { facts, lastBackup, statistics } = await observe(deps);
    const { status, problems } = assessHealth(facts);
    const late = overdueBy(facts);
    res.status(status === 'down' ? 503 : 200).json({
      status,
      problems,
      timestamp: facts.now.toISOString(),
      redis: { reachable: facts.redisUp },
      database: { reachable: facts.database.reachable, journalMode: facts.database.journalMode, sizeBytes: facts.database.sizeBytes },
      workers: { alive: facts.workersAlive },
      disk: { freeBytes: facts.freeBytes, neededForNextBackup: facts.neededBytes },
      backups: {
        autoBackupEnabled: facts.autoBackupEnabled,
        autoBackupInterval: facts.autoBackupInterval,
        lastSuccessfulBackup: facts.lastSuccessAt?.toISOString() ?? null,
        lastSuccessfulBackupAgeSeconds: facts.lastSuccessAt
          ? Math.round((facts.now.getTime() - facts.lastSuccessAt.getTime()) / 1_000)
          : null,
        lastBackupSize: lastBackup?.file_size_bytes ?? null,
        overdue: late !== null,
        failedBackups: statistics.failedBackups,
        statistics,
      },
      storage: await storageHealth(deps.config, deps.catalog),
    });
  });
  return router;
}
