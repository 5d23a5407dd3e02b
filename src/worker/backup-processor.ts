import { currentSettings } from '../shared/catalog/settings.js';
import type { BackupRow } from '../shared/catalog/catalog.js';
import { codeOf, messageOf } from '../shared/domain/errors.js';
import { toBackupBody } from '../shared/domain/presenters.js';
import { QUEUE, backupJobSchema, verifyJobToAdd } from '../shared/jobs/queues.js';
import { backupNow } from '../shared/operations/backup-now.js';
import { takeUnannouncedOutage } from '../shared/storage/mirror.js';
import { storesOf } from '../shared/storage/registry.js';
import { classify, lockedJobRun, operationDeps, type WorkerContext } from './context.js';
import { derivedId, followUpQueue, type FollowUpQueue, type Processor, type QueueJob } from './processor.js';

/** Failures of a backup that mean the live database itself is damaged. */
const DAMAGE_CODES = new Set(['database_damaged', 'database_unreadable']);

/**
 * A backup job, and what follows one: `database.damaged` when the live database is damaged, one
 * `mirror.failed` per outage of the mirror, and a full verification of the new backup
 * (VERIFY_AFTER_BACKUP), queued like any other so that it shows on the board.
 */
export function backupProcessor(ctx: WorkerContext): Processor<'backup'> {
  const verifyQueue = followUpQueue(ctx, QUEUE.verify);
  return {
    async run(job, token, signal) {
      const data = backupJobSchema.parse(job.data);
      let row: BackupRow;
      try {
        ({ row } = await backupNow(operationDeps(ctx, job), { ...(await lockedJobRun(ctx, job, token, signal)), type: data.type }));
      } catch (err) {
        const failure = classify(err, signal);
        if (DAMAGE_CODES.has(codeOf(failure) ?? '')) alertDamaged(ctx, job, failure);
        throw failure;
      }
      announceMirrorOutage(ctx, job);
      await verifyAfterBackup(ctx, job, row.id, verifyQueue);
      return toBackupBody(row);
    },
    close: verifyQueue.close,
  };
}

function alertDamaged(ctx: WorkerContext, job: QueueJob<'backup'>, err: Error): void {
  ctx.alerts?.send({
    event: 'database.damaged',
    summary: `the live database ${ctx.config.databasePath} is damaged; the backup was refused and older backups are kept`,
    reason: messageOf(err),
    queue: QUEUE.backup,
    jobId: String(job.id),
    lastSuccessfulBackup: ctx.catalog.lastSuccessfulBackup()?.completed_at ?? null,
  });
}

/** One `mirror.failed` alert per outage: the first backup whose copy failed after copies worked. */
function announceMirrorOutage(ctx: WorkerContext, job: QueueJob<'backup'>): void {
  const outage = takeUnannouncedOutage(ctx.catalog);
  if (!outage) return;
  ctx.alerts?.send({
    event: 'mirror.failed',
    summary: `copies to the mirror ${storesOf(ctx.config).mirror?.location ?? ''} are failing; backups are kept locally and copied when it is back`,
    reason: outage.reason,
    queue: QUEUE.backup,
    jobId: String(job.id),
    lastSuccessfulBackup: ctx.catalog.lastSuccessfulBackup()?.completed_at ?? null,
  });
}

async function verifyAfterBackup(
  ctx: WorkerContext,
  job: QueueJob<'backup'>,
  backupId: number,
  verifyQueue: FollowUpQueue<'verify'>,
): Promise<void> {
  if (!currentSettings(ctx.config, ctx.catalog).verifyAfterBackup) return;
  const { name, data, opts } = verifyJobToAdd({ kind: 'backup', backupId, mode: 'full' }, derivedId('verify-after', job.id));
  try {
    await verifyQueue.get().add(name, data, opts);
  } catch (err) {
    // The backup itself is done and recorded; a missed follow-up must not fail it.
    ctx.log.warn({ backupId, err }, 'could not queue the verification after a backup');
  }
}
