import { WaitingError } from 'bullmq';
import { currentSettings } from '../shared/catalog/settings.js';
import { messageOf, NotWalMode } from '../shared/domain/errors.js';
import { QUEUE } from '../shared/jobs/queues.js';
import { WalArchiver, type ArchiverProgress } from '../shared/wal/archiver.js';
import { archiverLeaseMs, keepArchiverLease, releaseArchiverLease } from '../shared/wal/archiver-job.js';
import { recordArchiverState } from '../shared/wal/archiver-state.js';
import { runSegmentMirror } from '../shared/wal/segment-mirror.js';
import { waitForSnapshot } from '../shared/wal/snapshot.js';
import { jobLogger, type WorkerContext } from './context.js';
import { followUpQueue, type Processor } from './processor.js';

/**
 * The WAL archiver as a job: it runs until archiving is turned off or the process stops. One job
 * id, so one archiver across every worker; a worker that dies leaves the job stalled, and another
 * takes it over once its lock expires. On shutdown it goes back to the queue at once for another
 * worker to pick up. Beside it, and started and stopped with it, the loop that copies segments to
 * the mirror (never inside a sync), and a timer that renews the archiver's lease.
 */
export function walProcessor(ctx: WorkerContext): Processor<'wal'> {
  const backupQueue = followUpQueue(ctx, QUEUE.backup);
  const run: Processor<'wal'>['run'] = async (job, token, signal) => {
    const { config, catalog } = ctx;
    const log = jobLogger(ctx, job).child({ component: 'wal' });
    const settings = () => currentSettings(config, catalog);
    if (!settings().walArchiveEnabled) return { stopped: 'archiving is off' };
    const owner = `${ctx.workerId}:${job.id}:${token ?? ''}`;
    const stop = new AbortController();
    let lastReport = 0;
    const watch = setInterval(() => {
      if (ctx.stopping) stop.abort();
    }, 100);
    const running = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const lease = keepArchiverLease(
      catalog,
      owner,
      () => archiverLeaseMs(config, settings().walArchiveInterval),
      () => log.warn('WAL archiving: another archiver took the lease; this one lets go of the database before its next sync'),
    );
    const archiver = new WalArchiver(
      { config, catalog, log },
      {
        intervalMs: () => settings().walArchiveInterval,
        signal: running,
        shouldStop: () => !settings().walArchiveEnabled,
        retentionMs: () => settings().walRetention,
        lease: () => lease.hold(),
        takeSnapshot: (generation, snapshotSignal) =>
          waitForSnapshot(
            catalog,
            generation,
            async (jobId) => {
              await backupQueue.get().add('backup', { type: 'scheduled' }, { jobId });
            },
            snapshotSignal,
          ),
        onGap: (reason, generation) =>
          ctx.alerts?.send({
            event: 'wal.gap',
            summary: `the WAL archive has a gap: generation ${generation.id} begins with a fresh snapshot`,
            reason,
            queue: QUEUE.wal,
            jobId: String(job.id),
            data: { generation: generation.id },
          }),
        onProgress: async (progress: ArchiverProgress) => {
          // At most once a second: the catalog and Redis are written for people, not per sync.
          if (Date.now() - lastReport < 1_000) return;
          lastReport = Date.now();
          recordArchiverState(catalog, { ...progress, workerId: ctx.workerId, at: new Date().toISOString(), notWalMode: null });
          await job.updateProgress(progress).catch((err: unknown) => {
            // The job is gone from Redis (it restarted empty): stop, so that the job the workers
            // add again runs the archiver where the board can see it.
            if (/missing key|missing lock/i.test(messageOf(err))) {
              log.warn('the archiver job is gone from Redis; stopping so that the job added again carries on');
              stop.abort();
            }
          });
        },
      },
    );
    // Ends with the archiver, whatever ends it; only while this archiver holds the lease.
    const mirrorStop = new AbortController();
    const mirroring = config.mirrorUrl
      ? runSegmentMirror(
          { config, catalog, log },
          {
            intervalMs: () => config.walMirrorInterval,
            signal: AbortSignal.any([running, mirrorStop.signal]),
            mayCopy: () => lease.held,
          },
        )
      : undefined;
    try {
      await archiver.run();
    } catch (err) {
      if (err instanceof NotWalMode) {
        log.error(err.message);
        recordArchiverState(catalog, {
          ...archiver.progress,
          workerId: ctx.workerId,
          at: new Date().toISOString(),
          notWalMode: err.message,
        });
        return { stopped: err.message };
      }
      throw err;
    } finally {
      mirrorStop.abort();
      await mirroring;
      lease.stop();
      clearInterval(watch);
      releaseArchiverLease(catalog, owner);
    }
    if (ctx.stopping && token) {
      // Back to the queue at once, for another worker to carry on from the same generation.
      log.info('WAL archiver handed over on shutdown');
      await job.moveToWait(token);
      throw new WaitingError();
    }
    return { stopped: signal?.aborted ? `cancelled: ${messageOf(signal.reason)}` : 'archiving turned off' };
  };
  return { run, close: backupQueue.close };
}
