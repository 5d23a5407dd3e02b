import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Job, Queue, QueueEvents } from 'bullmq';
import { toRestoreBody } from '../../shared/domain/presenters.js';
import type { WalRestoreInfo } from '../../shared/operations/restore-to-moment.js';
import type { ProducerDeps } from '../deps.js';

/** How the API's POSTs hand work to a queue and answer with its outcome. */

export const TIMED_OUT = Symbol('timed out');

/**
 * Waits for a job up to `ms`. Resolves to its return value, or TIMED_OUT; rejects with the job's
 * failure reason.
 */
export async function waitFor<R>(job: Job, events: QueueEvents, ms: number): Promise<R | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  const finished = job.waitUntilFinished(events, ms + 60_000) as Promise<R>;
  finished.catch(() => undefined); // settled after a timeout: nobody listens any more
  try {
    return await Promise.race([finished, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function wantsAsync(req: Request): boolean {
  return /\brespond-async\b/i.test(String(req.headers.prefer ?? ''));
}

export function accepted(res: Response, job: Job, what: string) {
  const joined = isJoined(job);
  res
    .status(202)
    .location(`/api/jobs/${job.id}`)
    .json({
      success: true,
      message: joined ? `${what} already queued; this request joined it` : `${what} queued`,
      jobId: job.id,
      statusUrl: `/api/jobs/${job.id}`,
      ...(joined ? { joined: true } : {}),
    });
}

/** Whether `add` handed back a job that was already pending instead of the one asked for. */
const isJoined = (job: Job) => job.opts.jobId !== undefined && job.opts.jobId !== job.id;

/**
 * Adds a job, or joins the pending one with the same `dedupId`: BullMQ keeps the id taken until
 * that job completes or fails for good, so repeated clicks (or a sweep on top of a click) never
 * pile up copies of the same work, and `add` returns the job already there.
 */
export async function enqueue<T>(queue: Queue<T>, data: T, dedupId?: string): Promise<Job<T>> {
  const prefix = queue.name;
  return (await queue.add(prefix as never, data as never, {
    jobId: `${prefix}-${randomUUID()}`,
    ...(dedupId ? { deduplication: { id: dedupId } } : {}),
  })) as Job<T>;
}

/**
 * Answers a restore request: 202 under `Prefer: respond-async` or past REQUEST_TIMEOUT, 422 with
 * the restore row when the job failed, else the restored row (and, when the worker chose the
 * backup, the newer ones it passed over).
 */
export async function answerRestore(deps: ProducerDeps, req: Request, res: Response, job: Job): Promise<void> {
  if (wantsAsync(req)) return accepted(res, job, 'Restore');
  let outcome: { skipped?: unknown; wal?: Partial<WalRestoreInfo> } | typeof TIMED_OUT;
  try {
    outcome = await waitFor(job, deps.queues.events.restore, deps.config.requestTimeout);
  } catch (err) {
    const row = deps.catalog.getRestoreByJob(String(job.id));
    res.status(422).json({
      success: false,
      error: { code: 'restore_failed', message: (err as Error).message },
      ...(row ? { restore: toRestoreBody(row) } : {}),
    });
    return;
  }
  if (outcome === TIMED_OUT) return accepted(res, job, 'Restore');
  const row = deps.catalog.getRestoreByJob(String(job.id))!;
  res.json({
    success: true,
    message: outcome?.wal
      ? `Database restored as of ${String(outcome.wal.restoredTo)} from the WAL archive; no restart needed` +
        (outcome.wal.gapAfter
          ? `; the archive has a gap after it (${outcome.wal.gapAfter.reason}), from ${outcome.wal.gapAfter.startedAt}: later commits are not in it`
          : '')
      : 'Backup restored successfully; no restart needed',
    restore: toRestoreBody(row),
    ...(outcome?.skipped !== undefined ? { skipped: outcome.skipped } : {}),
    ...(outcome?.wal ? { wal: outcome.wal, restoredTo: outcome.wal.restoredTo ?? null } : {}),
  });
}
