import fs from 'node:fs';
import path from 'node:path';
import type { BackupRow } from '../../shared/catalog/catalog.js';
import { toRestoreBody } from '../../shared/domain/presenters.js';
import { LATEST, LATEST_VALID, parseRestoreTo, type ArchiveTarget } from '../../shared/domain/restore-target.js';
import { NoValidBackup, type SkippedBackup } from '../../shared/domain/errors.js';
import { restoreLatestValid } from '../../shared/operations/restore-latest-valid.js';
import { restoreOne } from '../../shared/operations/restore-one.js';
import { recoverToFile, restoreToMoment, type MomentOutcome, type WalRestoreInfo } from '../../shared/operations/restore-to-moment.js';
import { cliRunId } from '../../shared/runtime/process-owner.js';
import { planArchiveRestore, type ArchivePlan } from '../../shared/wal/restore-plan.js';
import { cliFailure, cliRun, findBackup, withBucket, withCatalog, withOperationDeps, type CliContext } from '../context.js';
import { CliError, EXIT, bytes, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

const stage = (p: number) => (p < 25 ? 'verifying' : p < 60 ? 'safety copy' : p < 90 ? 'restoring' : 'checking');

/** What `restore` is about to replace, for the person who has to say yes to it. */
function restoreQuestion(ctx: CliContext, first: BackupRow, latestValid: boolean): string {
  const live = ctx.config.databasePath;
  const stat = fs.statSync(live, { throwIfNoEntry: false });
  const backup =
    `backup ${first.id} (${first.backup_type}, taken ${first.completed_at ?? first.started_at}, ` +
    `${bytes(first.file_size_bytes)}, ${path.basename(first.file_path)})`;
  return [
    latestValid
      ? `About to restore the newest backup that passes full verification, starting with ${backup};\n  older ones are tried if it fails.`
      : `About to restore ${backup}.`,
    `It replaces the live database ${live} (${stat ? `${bytes(stat.size)}, last modified ${stat.mtime.toISOString()}` : 'missing now'}).`,
    'Its current contents are kept as a safety backup first, so the restore can be undone.',
    'Replace the live database? [y/N] ',
  ].join('\n');
}

/** No candidate passed verification: exit 5, with what each one failed. */
function noneValid(ctx: CliContext, err: NoValidBackup): ExitCode {
  const message = `no backup passed verification (${err.skipped.length} tried)`;
  if (ctx.out.json) {
    ctx.out.result('', { success: false, error: { code: err.code, message }, skipped: err.skipped });
    return EXIT.invalid;
  }
  for (const s of err.skipped) ctx.out.note(`Skipped backup ${s.backupId}: ${s.reason}`);
  throw new CliError(message, EXIT.invalid, err.code);
}

/**
 * A restore replaces the live database: without --yes it asks, and without a terminal to ask on
 * it stops here, before anything is opened, so a script that forgot --yes leaves everything as it was.
 */
function confirmable(ctx: CliContext, opts: { yes?: boolean }): void {
  if (!opts.yes && !ctx.out.canAsk) {
    throw new CliError(
      'restore replaces the live database and there is no terminal to confirm on: pass --yes to restore without asking',
      EXIT.usage,
      'confirmation_required',
    );
  }
}

interface RestoreOptions {
  latestValid?: boolean;
  to?: string;
  output?: string;
  yes?: boolean;
  from?: string;
}

async function restore(ctx: CliContext, target: string | undefined, opts: RestoreOptions): Promise<ExitCode> {
  if (opts.from !== undefined && (opts.to === undefined || opts.to === LATEST_VALID || !opts.output)) {
    // The safety backup of the live database belongs in this host's BACKUP_DIR and catalog, which
    // a restore from another bucket does not use: it writes a file to put in place by hand.
    throw new CliError(
      '--from goes with --to latest|<time> --output FILE: it writes the recovered database to a new file; stop the application and move it into place',
      EXIT.usage,
      'bad_request',
    );
  }
  if (opts.to !== undefined) {
    if (target || opts.latestValid) throw new CliError('pass either a backup, --latest-valid or --to', EXIT.usage, 'bad_request');
    const to = parseRestoreTo(opts.to);
    if (to?.kind === LATEST_VALID && !opts.output) opts = { ...opts, latestValid: true };
    else if (to && to.kind !== LATEST_VALID) return restoreToPoint(ctx, opts, to);
    else
      throw new CliError(
        `--to takes "${LATEST}", "${LATEST_VALID}" or an ISO-8601 time with its offset (2026-11-25T12:00:00Z), not ${JSON.stringify(opts.to)}`,
        EXIT.usage,
        'bad_request',
      );
  }
  if (opts.output) throw new CliError('--output goes with --to latest or --to <time>', EXIT.usage, 'bad_request');
  if (Boolean(target) === Boolean(opts.latestValid)) {
    throw new CliError('name one backup (an id or a file) or pass --latest-valid', EXIT.usage, 'bad_request');
  }
  confirmable(ctx, opts);
  return withCatalog(ctx, async (catalog) => {
    // Candidates are fixed before starting: the safety backup a restore takes is never one.
    const candidates = opts.latestValid ? catalog.completedBackups() : [findBackup(catalog, target!)];
    if (!candidates.length) throw new CliError('there are no completed backups to restore', EXIT.notFound, 'no_backups');
    // Asked before the lock is taken: a person thinking it over must not hold up the service.
    if (!opts.yes && !(await ctx.out.confirm(restoreQuestion(ctx, candidates[0]!, Boolean(opts.latestValid))))) {
      throw new CliError('restore cancelled; nothing was changed', EXIT.failed, 'cancelled');
    }
    return withOperationDeps(ctx, catalog, async (deps) => {
      let outcome: Awaited<ReturnType<typeof restoreOne>> & { backupId: number; skipped: SkippedBackup[] };
      try {
        outcome = await ctx.out.progress(async (update) => {
          const run = cliRun(ctx, 'restore', (p) => update(p, stage(p)));
          if (opts.latestValid) return restoreLatestValid(deps, { ...run, candidates });
          const backupId = candidates[0]!.id;
          return { ...(await restoreOne(deps, { ...run, backupId })), backupId, skipped: [] };
        });
      } catch (err) {
        if (err instanceof NoValidBackup && err.skipped.length) return noneValid(ctx, err);
        throw cliFailure(err, 'restore');
      }
      const { row, backupId, skipped, via } = outcome;
      const backup = candidates.find((c) => c.id === backupId);
      const lines = [
        ...skipped.map((s) => `Skipped backup ${s.backupId}: ${s.reason}`),
        `Restored backup ${backupId} (${backup ? path.basename(backup.file_path) : 'unknown file'}) into ${ctx.config.databasePath}.`,
        row.safety_backup_id ? `The database as it was is kept as safety backup ${row.safety_backup_id}.` : '',
        row.error_message ? `Note: ${row.error_message}` : '',
      ].filter(Boolean);
      ctx.out.result(lines.join('\n'), { success: true, restore: toRestoreBody(row), backupId, skipped, lock: via });
      return EXIT.ok;
    });
  });
}

/**
 * `restore --to latest|<time>`: the WAL archive's last commit (or its last sync at or before the
 * time), rebuilt and checked, then restored as a backup is; with `--output FILE`, written to a new
 * file instead, the live database left alone.
 */
async function restoreToPoint(ctx: CliContext, opts: RestoreOptions, target: ArchiveTarget): Promise<ExitCode> {
  if (opts.output) return withBucket(ctx, opts.from, (c) => recoverIntoFile(c, opts.output!, target));
  confirmable(ctx, opts);
  return withCatalog(ctx, async (catalog) => {
    let plan: ArchivePlan;
    try {
      plan = planArchiveRestore(catalog, target);
    } catch (err) {
      throw cliFailure(err, 'restore');
    }
    if (!opts.yes && !(await ctx.out.confirm(pointQuestion(ctx, plan))))
      throw new CliError('restore cancelled; nothing was changed', EXIT.failed, 'cancelled');
    return withOperationDeps(ctx, catalog, async (deps) => {
      let outcome: MomentOutcome;
      try {
        outcome = await ctx.out.progress(async (update) =>
          restoreToMoment(deps, { ...cliRun(ctx, 'restore', (p) => update(p, stage(p))), target }),
        );
      } catch (err) {
        throw cliFailure(err, 'restore');
      }
      const { row, wal, via } = outcome;
      const lines = [
        `Restored the database as of ${wal.restoredTo} (WAL generation ${wal.generation}: snapshot backup ${wal.snapshotBackupId} and ${wal.segmentsApplied} segment(s)) into ${ctx.config.databasePath}.`,
        row.safety_backup_id ? `The database as it was is kept as safety backup ${row.safety_backup_id}.` : '',
        gapNote(wal),
        row.error_message ? `Note: ${row.error_message}` : '',
      ].filter(Boolean);
      ctx.out.result(lines.join('\n'), { success: true, restore: toRestoreBody(row), wal, restoredTo: wal.restoredTo, lock: via });
      return EXIT.ok;
    });
  });
}

/** What a restore to a moment is about to replay and replace, for the person who has to say yes to it. */
function pointQuestion(ctx: CliContext, plan: ArchivePlan): string {
  const { target, generation, segments } = plan;
  return [
    `About to rebuild the database as of ${target.kind === 'moment' ? `the last archived sync at or before ${target.at}` : 'the last archived commit'} (${segments.at(-1)?.read_at ?? generation.snapshot_at}):`,
    `  WAL generation ${generation.id}, snapshot backup ${generation.snapshot_backup_id}, ${segments.length} segment(s).`,
    `It replaces the live database ${ctx.config.databasePath}; its current contents are kept as a safety backup first.`,
    'Replace the live database? [y/N] ',
  ].join('\n');
}

/** `--output FILE`: the recovered database in a new file; nothing else changes, so no question is asked. */
async function recoverIntoFile(ctx: CliContext, output: string, target: ArchiveTarget): Promise<ExitCode> {
  if (fs.existsSync(output)) throw new CliError(`${output} exists; --output writes a new file only`, EXIT.usage, 'bad_request');
  return withCatalog(ctx, async (catalog) => {
    let wal: Awaited<ReturnType<typeof recoverToFile>>;
    try {
      wal = await recoverToFile({ config: ctx.config, catalog }, { runId: cliRunId('output'), target, output });
    } catch (err) {
      throw cliFailure(err, 'restore');
    }
    ctx.out.result(
      [
        `Wrote the database as of ${wal.restoredTo} (WAL generation ${wal.generation}: snapshot backup ${wal.snapshotBackupId} and ${wal.segmentsApplied} segment(s)) to ${wal.output}; the live database was not touched.`,
        gapNote(wal),
      ]
        .filter(Boolean)
        .join('\n'),
      { success: true, output: wal.output, wal, restoredTo: wal.restoredTo },
    );
    return EXIT.ok;
  });
}

/** What a restore to latest does not hold: the archive's gap after it, said where the operator reads. */
function gapNote(wal: WalRestoreInfo): string {
  if (!wal.gapAfter) return '';
  const { generation, startedAt, reason } = wal.gapAfter;
  const next =
    generation === null
      ? `found ${startedAt} (${reason}); the next generation has not begun yet`
      : `generation ${generation} began ${startedAt} (${reason}) and has no snapshot yet`;
  return `Note: the WAL archive has a gap after this moment: ${next}; commits after ${wal.restoredTo} are not in this database.`;
}

export const registerRestore: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('restore')
    .description('Verify a backup, keep a safety backup of the database, copy the backup in, check the result')
    .argument('[backup]', 'backup id, file path or file name')
    .option('--latest-valid', 'restore the newest backup that passes full verification')
    .option(
      '--to <target>',
      `"${LATEST}": the last commit the WAL archive holds; an ISO-8601 time: the last archived sync at or before it; "${LATEST_VALID}": as --latest-valid`,
    )
    .option('--output <file>', 'with --to: write the recovered database to this new file and leave the live database alone')
    .option(
      '--from <url>',
      'with --to and --output: read this bucket (s3://bucket/prefix) alone instead of the configured mirror and catalog',
    )
    .option('-y, --yes', 'restore without asking (required when not run from a terminal)')
    .action(async (target: string | undefined, opts: RestoreOptions) => run(await restore(ctx(), target, opts)));
};
