import { Router } from 'express';
import { z } from 'zod';
import { AppError, badRequest, notFound, NotWalMode } from '../../shared/domain/errors.js';
import { toBackupBody, toBackupListItem } from '../../shared/domain/presenters.js';
import { backupJobSchema, restoreDedupId, verifyDedupId } from '../../shared/jobs/queues.js';
import { nextScheduledBackup, nextScheduledDrill, nextScheduledVerification, syncSchedules } from '../../shared/jobs/scheduler.js';
import { describeDatabase } from '../../shared/sqlite/sqlite-ops.js';
import { ensureArchiverJob } from '../../shared/wal/archiver-job.js';
import { currentSettings, settingsPatchSchema, updateSettings } from '../../shared/catalog/settings.js';
import type { ProducerDeps } from '../deps.js';
import { parseBody, parseId, parseQuery } from '../validate.js';
import { TIMED_OUT, accepted, answerRestore, enqueue, waitFor, wantsAsync } from './job-answers.js';

/**
 * Deepest page reachable by `offset`: SQLite walks every skipped row, so deep offsets cost a scan
 * per request. The keyset `cursor` (the `nextCursor` of the previous page) has no such limit.
 */
export const MAX_LIST_OFFSET = 10_000;

const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce
      .number()
      .int()
      .min(0)
      .max(MAX_LIST_OFFSET, {
        message: `at most ${MAX_LIST_OFFSET}; page further with cursor (the nextCursor of the previous page), which has no limit`,
      })
      .default(0),
    cursor: z.coerce.number().int().positive().optional(),
    status: z.enum(['in_progress', 'completed', 'failed']).optional(),
  })
  .strict();

const createBody = z.object({ type: z.enum(['manual', 'pre-migration']).default('manual') }).strict();
const verifyBody = z.object({ mode: z.enum(['full', 'quick']).default('full') }).strict();
const emptyBody = z.object({}).strict();

export function backupsRouter(deps: ProducerDeps): Router {
  const { config, catalog, queues } = deps;
  const router = Router();

  router.post('/', async (req, res) => {
    const body = parseBody(createBody, req.body);
    const data = backupJobSchema.parse({ type: body.type });
    // One pending job per type: clicking "backup now" again joins the backup already waiting.
    const job = await enqueue(queues.backup, data, `backup-${data.type}`);
    if (wantsAsync(req)) return accepted(res, job, 'Backup');
    try {
      const outcome = await waitFor(job, queues.events.backup, config.requestTimeout);
      if (outcome === TIMED_OUT) return accepted(res, job, 'Backup');
    } catch (err) {
      const row = catalog.getBackupByJob(String(job.id));
      res.status(500).json({
        success: false,
        error: { code: 'backup_failed', message: (err as Error).message },
        ...(row ? { backup: toBackupBody(row) } : {}),
      });
      return;
    }
    const row = catalog.getBackupByJob(String(job.id));
    if (!row) throw new AppError('backup_missing', `job ${job.id} finished but its catalog row is missing`);
    res.status(201).json({ success: true, message: 'Backup created successfully', backup: toBackupBody(row) });
  });

  router.get('/', (req, res) => {
    const q = parseQuery(listQuery, req.query);
    const rows = catalog.listBackups({ limit: q.limit, offset: q.offset, before: q.cursor, status: q.status });
    const last = rows.at(-1);
    res.json({
      success: true,
      backups: rows.map(toBackupListItem),
      statistics: catalog.statistics(),
      count: rows.length,
      total: catalog.countBackups(),
      nextCursor: rows.length === q.limit && last ? last.id : null,
    });
  });

  router.get('/stats', (_req, res) => {
    res.json({ success: true, statistics: catalog.statistics() });
  });

  router.get('/config', async (_req, res) => {
    res.json({ success: true, config: await describeConfig(deps) });
  });

  router.put('/config', async (req, res) => {
    const patch = parseBody(settingsPatchSchema, req.body ?? {});
    if (Object.keys(patch).length === 0) {
      throw badRequest(`send at least one of ${Object.keys(settingsPatchSchema.shape).join(', ')}`);
    }
    // Archiving needs WAL mode; the database is not changed to get it.
    if (patch.walArchiveEnabled) {
      const info = await describeDatabase(config.databasePath).catch(() => undefined);
      if (info && info.journalMode.toLowerCase() !== 'wal') throw new NotWalMode(config.databasePath, info.journalMode).asAppError();
    }
    const settings = updateSettings(config, catalog, patch);
    await syncSchedules(queues, settings);
    if (settings.walArchiveEnabled) await ensureArchiverJob(queues.wal);
    req.log.info({ settings }, 'backup configuration updated');
    res.json({ success: true, message: 'Configuration updated', config: await describeConfig(deps) });
  });

  router.get('/:id', (req, res) => {
    const id = parseId(req.params.id);
    const row = catalog.getBackup(id);
    if (!row) throw notFound(`backup ${id} does not exist`, 'backup_not_found');
    res.json({ success: true, backup: toBackupBody(row, catalog.lastVerification(id) ?? undefined) });
  });

  router.post('/:id/verify', async (req, res) => {
    const id = parseId(req.params.id);
    const { mode } = parseBody(verifyBody, req.body ?? {});
    if (!catalog.getBackup(id)) throw notFound(`backup ${id} does not exist`, 'backup_not_found');
    const job = await enqueue(queues.verify, { kind: 'backup', backupId: id, mode }, verifyDedupId(id, mode));
    if (wantsAsync(req)) return accepted(res, job, 'Verification');
    let outcome: { valid: boolean; message: string; checks: unknown } | typeof TIMED_OUT;
    try {
      outcome = await waitFor(job, queues.events.verify, config.requestTimeout);
    } catch (err) {
      res.status(500).json({ success: false, error: { code: 'verify_failed', message: (err as Error).message } });
      return;
    }
    if (outcome === TIMED_OUT) return accepted(res, job, 'Verification');
    res.json({ success: true, backupId: id, valid: outcome.valid, message: outcome.message, mode, checks: outcome.checks });
  });

  router.post('/:id/restore', async (req, res) => {
    const id = parseId(req.params.id);
    parseBody(emptyBody, req.body ?? {});
    const backup = catalog.getBackup(id);
    if (!backup) throw notFound(`backup ${id} does not exist`, 'backup_not_found');
    if (backup.status !== 'completed') throw badRequest(`backup ${id} is ${backup.status}, not completed`, 'backup_not_restorable');
    const target = { kind: 'backup', backupId: id } as const;
    const job = await enqueue(queues.restore, target, restoreDedupId(target));
    await answerRestore(deps, req, res, job);
  });

  return router;
}

async function describeConfig({ config, catalog, queues }: ProducerDeps) {
  const settings = currentSettings(config, catalog);
  return {
    backupDir: config.backupDir,
    databasePath: config.databasePath,
    maxBackups: settings.maxBackups,
    autoBackupEnabled: settings.autoBackupEnabled,
    autoBackupInterval: settings.autoBackupInterval,
    compressionEnabled: config.compression !== 'none',
    compression: config.compression,
    nextScheduledBackup: settings.autoBackupEnabled ? await nextScheduledBackup(queues.backup) : null,
    verifyAfterBackup: settings.verifyAfterBackup,
    verifySchedule: settings.verifySchedule,
    walArchiveEnabled: settings.walArchiveEnabled,
    walArchiveInterval: settings.walArchiveInterval,
    walRetention: settings.walRetention,
    nextScheduledVerification: settings.verifySchedule !== 'off' ? await nextScheduledVerification(queues.verify) : null,
    restoreDrillSchedule: settings.restoreDrillSchedule,
    nextScheduledDrill: settings.restoreDrillSchedule !== 'off' ? await nextScheduledDrill(queues.verify) : null,
  };
}
