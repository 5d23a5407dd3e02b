import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArchiveTarget } from '../domain/restore-target.js';
import { permanentFailure, AppError, messageOf } from '../domain/errors.js';
import { withLease } from '../locking/lease.js';
import { fsyncPath, removeQuietly } from '../runtime/files.js';
import { restoreFrom, type RestoreSource } from '../restore/restore.js';
import { GAP_PREFIX } from '../wal/archiver.js';
import { replayGeneration, type Replayed } from '../wal/replay.js';
import { planArchiveRestore, planForSnapshot, type ArchivePlan } from '../wal/restore-plan.js';
import type { RestoreOutcome } from './restore-one.js';
import { underDatabaseLock, type LockedRun, type OperationDeps } from './run.js';

/** What a restore from the WAL archive was made of. */
export interface WalRestoreInfo {
  generation: number;
  snapshotBackupId: number;
  segmentsApplied: number;
  /** When the last applied segment was read from the WAL: the database is as of then. */
  restoredTo: string | null;
  /**
   * For a restore to latest: the generation that began after the one replayed (after a gap) and
   * has no snapshot yet, so commits after `restoredTo` are not in what was restored.
   */
  gapAfter?: { generation: number | null; startedAt: string; reason: string };
}

export interface MomentOutcome extends RestoreOutcome {
  wal: WalRestoreInfo;
}

/**
 * Restores the live database as of a moment of the WAL archive: its last commit for `latest`, its
 * last archived sync at or before `at` for a moment. First the moment is decided
 * (`planArchiveRestore`: the generation, its snapshot and the segments, or a refusal naming the
 * window); then the work: the snapshot verified and the segments replayed into a temp file and
 * checked (`replayGeneration`), which is the source of the same steps as a backup's restore
 * (`restoreFrom`: safety backup of the live database when there is one, copy in through SQLite's
 * backup API, check, rollback on failure). Works when the live database is gone. A rerun of the job
 * goes on with the snapshot its row names.
 */
export async function restoreToMoment(deps: OperationDeps, run: LockedRun & { target: ArchiveTarget }): Promise<MomentOutcome> {
  const { config, catalog, log } = deps;
  return underDatabaseLock(deps, run, async (lock) => {
    const earlier = catalog.getRestoreByJob(run.runId);
    const plan = earlier ? planForSnapshot(catalog, earlier.backup_id, run.target) : planArchiveRestore(catalog, run.target);
    const { row, prepared } = await restoreFrom(
      { config, catalog, log },
      {
        backupId: plan.snapshotBackupId,
        jobId: run.runId,
        lock: lock.guard,
        onProgress: run.report.progress,
        signal: run.signal,
        gate: run.gate,
      },
      replaySource(deps, plan),
    );
    return { row, via: lock.via, wal: walInfo(deps, plan, prepared) };
  });
}

/** The plan's replay as a restore's source: every failure of it refuses the restore (`backup_invalid` unless it says otherwise). */
function replaySource(deps: Pick<OperationDeps, 'config' | 'catalog'>, plan: ArchivePlan): RestoreSource<Replayed> {
  return {
    async prepare(_snapshot, refuse, bytesFinal) {
      try {
        return await replayGeneration(deps.config, deps.catalog, plan.generation, plan.segments, 'restore', bytesFinal);
      } catch (err) {
        throw refuse(err instanceof AppError ? err : permanentFailure('backup_invalid', messageOf(err), err));
      }
    },
  };
}

/**
 * Writes the database as of a moment (or the latest archived commit) to a new file, leaving the
 * live database alone: the safe way to look at the past, or to copy one table back. The file must
 * not exist; it is written complete (copied, fsynced) or not at all.
 */
export async function recoverToFile(
  deps: Pick<OperationDeps, 'config' | 'catalog'>,
  run: { runId: string; target: ArchiveTarget; output: string },
): Promise<WalRestoreInfo & { output: string }> {
  const { config, catalog } = deps;
  const plan = planArchiveRestore(catalog, run.target);
  return withLease(catalog, plan.snapshotBackupId, `${run.runId}:output`, async () => {
    // Without the database lock: its copies are named `read`, which a lock holder leaves alone.
    const replayed = await replayGeneration(config, catalog, plan.generation, plan.segments, 'read');
    try {
      await writeNew(replayed.copy.path, run.output);
    } finally {
      await replayed.copy.release();
    }
    return { ...walInfo(deps, plan, replayed), output: path.resolve(run.output) };
  });
}

/** Copies `from` to `to`, which must not exist: complete and fsynced, or not at all. */
async function writeNew(from: string, to: string): Promise<void> {
  const temp = `${to}.partial-${process.pid}`;
  try {
    await fs.copyFile(from, temp, fs.constants.COPYFILE_EXCL);
    await fsyncPath(temp);
    // A link never replaces a file that appeared meanwhile.
    await fs.link(temp, to);
    await fsyncPath(path.dirname(path.resolve(to)));
  } finally {
    await removeQuietly(temp);
  }
}

/** What the restore was made of; a rerun that found it done replayed nothing. */
function walInfo(deps: Pick<OperationDeps, 'catalog'>, plan: ArchivePlan, replayed: Replayed | undefined): WalRestoreInfo {
  return {
    generation: plan.generation.id,
    snapshotBackupId: plan.snapshotBackupId,
    segmentsApplied: replayed?.segmentsApplied ?? 0,
    restoredTo: replayed?.restoredTo ?? null,
    ...(plan.target.kind === 'latest' ? { gapAfter: gapAfter(deps.catalog, plan.generation.id) } : {}),
  };
}

/**
 * The gap after the generation replayed, when there is one: the first generation after it (no
 * snapshot yet, or latest would have been it), or, before the archiver has begun that one, the
 * gap this generation ended at (`generation` null, `startedAt` when it was found).
 */
function gapAfter(catalog: OperationDeps['catalog'], generationId: number): WalRestoreInfo['gapAfter'] {
  const next = catalog.wal.generations().find((g) => g.id > generationId);
  if (next) return { generation: next.id, startedAt: next.started_at, reason: next.reason };
  const ended = catalog.wal.generation(generationId);
  if (ended?.ended_at && ended.end_reason?.startsWith(GAP_PREFIX)) {
    return { generation: null, startedAt: ended.ended_at, reason: ended.end_reason.slice(GAP_PREFIX.length) };
  }
  return undefined;
}
