import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { currentSettings } from '../../shared/catalog/settings.js';
import { walStatus } from '../../shared/wal/wal-health.js';
import { recoveryWindow } from '../../shared/wal/window.js';
import { offsiteState } from '../../shared/wal/offsite.js';
import { VERIFY_JOB_NAMES, verifyJobToAdd, type VerifyJob } from '../../shared/jobs/queues.js';
import { lastDrillSummary } from '../../shared/wal/drill.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody } from '../validate.js';
import { TIMED_OUT, accepted, waitFor, wantsAsync } from './job-answers.js';

const emptyBody = z.object({}).strict();

/**
 * `GET /api/recovery-window`: the moments the WAL archive can restore to, generation by
 * generation; a gap between two generations is a stretch no restore reaches, shown as such.
 */
export function recoveryWindowRouter(deps: ProducerDeps): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    const window = recoveryWindow(deps.catalog);
    const status = walStatus(deps.config, deps.catalog);
    res.json({
      success: true,
      enabled: currentSettings(deps.config, deps.catalog).walArchiveEnabled,
      earliest: window.earliest,
      latest: window.latest,
      lagSeconds: status.lagSeconds,
      generations: window.generations,
      gaps: window.gaps,
      lastDrill: lastDrillSummary(deps.catalog),
      // How far a restore from the mirror alone reaches; null without a mirror or with archiving off.
      offsite: offsiteState(deps.config, deps.catalog, Date.now(), window),
    });
  });

  /**
   * `POST /api/recovery-window/verify`: verifies every generation of the archive (snapshot,
   * segments, chain); answers like `POST /api/backups/:id/verify` (waits, or 202 with statusUrl).
   */
  router.post('/verify', async (req, res) => {
    parseBody(emptyBody, req.body ?? {});
    const job = await addVerifyJob(deps, { kind: 'archive' });
    if (wantsAsync(req)) return accepted(res, job, 'Archive verification');
    let outcome: { valid: boolean; generations: unknown[] } | typeof TIMED_OUT;
    try {
      outcome = await waitFor(job, deps.queues.events.verify, deps.config.requestTimeout);
    } catch (err) {
      res.status(500).json({ success: false, error: { code: 'verify_failed', message: (err as Error).message } });
      return;
    }
    if (outcome === TIMED_OUT) return accepted(res, job, 'Archive verification');
    const window = recoveryWindow(deps.catalog);
    res.json({ success: true, valid: outcome.valid, generations: outcome.generations, earliest: window.earliest, latest: window.latest });
  });

  /** `POST /api/recovery-window/drill`: a restore drill now (into temp files; the live database is only read). */
  router.post('/drill', async (req, res) => {
    parseBody(emptyBody, req.body ?? {});
    const job = await addVerifyJob(deps, { kind: 'drill', trigger: 'api' });
    if (wantsAsync(req)) return accepted(res, job, 'Restore drill');
    let outcome: { drill: unknown } | typeof TIMED_OUT;
    try {
      outcome = await waitFor(job, deps.queues.events.verify, deps.config.requestTimeout);
    } catch (err) {
      res.status(500).json({ success: false, error: { code: 'drill_failed', message: (err as Error).message } });
      return;
    }
    if (outcome === TIMED_OUT) return accepted(res, job, 'Restore drill');
    res.json({ success: true, drill: outcome.drill });
  });

  return router;
}

/** A verify job under its kind's name, joining the pending one of the same kind. */
function addVerifyJob(deps: ProducerDeps, job: VerifyJob) {
  const { name, data, opts } = verifyJobToAdd(job, `${VERIFY_JOB_NAMES[job.kind]}-${randomUUID()}`);
  return deps.queues.verify.add(name, data, opts);
}
