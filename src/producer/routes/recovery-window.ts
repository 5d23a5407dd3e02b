import { Router } from 'express';
import { currentSettings } from '../../shared/catalog/settings.js';
import { walStatus } from '../../shared/wal/wal-health.js';
import { recoveryWindow } from '../../shared/wal/window.js';
import type { ProducerDeps } from '../deps.js';

/**
 * `GET /api/recovery-window`: the moments the WAL archive can restore to, generation by
 * generation; a gap between two generations is a stretch no restore reaches, shown as such.
 */
export function recoveryWindowRouter(deps: ProducerDeps): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    const window = recoveryWindow(deps.catalog);
    const status = walStatus(deps.config, deps.catalog);
    const gaps = window.generations.slice(1).map((g, i) => ({ from: window.generations[i]!.end, to: g.start, reason: g.reason }));
    res.json({
      success: true,
      enabled: currentSettings(deps.config, deps.catalog).walArchiveEnabled,
      earliest: window.earliest,
      latest: window.latest,
      lagSeconds: status.lagSeconds,
      generations: window.generations,
      // Every stretch between two generations, even the seconds a rollover's snapshot takes: a
      // moment in one cannot be restored to.
      gaps,
    });
  });
  return router;
}
