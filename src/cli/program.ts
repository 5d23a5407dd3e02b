import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createBackup } from '../shared/backup/backup.js';
import { BACKUP_TYPES, Catalog, type BackupRow, type BackupType } from '../shared/catalog/catalog.js';
import { AppError, messageOf } from '../shared/domain/errors.js';
import { MIRROR, storageHealth } from '../shared/storage/mirror.js';
import { toBackupBody, toRestoreBody } from '../shared/domain/presenters.js';
import { cliRunId } from '../shared/locking/process-owner.js';
import {
  catalogIsSound,
  moveCatalogAside,
  rebuildCatalog,
  reindex,
  type ReindexOptions,
  type ReindexReport,
} from '../shared/catalog/reindex.js';
import { restoreBackup } from '../shared/restore/restore.js';
import { applyRetention } from '../shared/backup/retention.js';
import { currentSettings } from '../shared/catalog/settings.js';
import { verifyAndRecord, type VerifyMode } from '../shared/verify/verify.js';
import { cliContext, findBackup, withCatalog, withDatabaseLock, type CliContext, type GlobalOptions } from './context.js';
import { CliError, EXIT, Output, bytes, table, type ExitCode } from './output.js';

const positiveInt = (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(v);
};

const encodingLabel = (b: BackupRow) => [b.compression ?? 'none', b.encryption ? 'encrypted' : ''].filter(Boolean).join('+');

async function listCommand(ctx: CliContext, opts: { limit: number }): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const rows = catalog.listBackups({ limit: opts.limit });
    const mirrored = new Map(catalog.copies(MIRROR).map((c) => [c.backup_id, c.status]));
    const items = rows.map((r) => {
      const v = catalog.lastVerification(r.id);
      return {
        ...toBackupBody(r),
        encrypted: Boolean(r.encryption),
        lastVerification: v ? { verifiedAt: v.verified_at, valid: v.valid === 1, message: v.message } : null,
        mirror: ctx.config.mirrorDir ? (mirrored.get(r.id) ?? 'missing') : null,
      };
    });
    const human = items.length
      ? table(
          items.map((b) => [
            b.id,
            b.backupType,
            b.status,
            b.startedAt,
            bytes(b.fileSize),
            encodingLabel(rows.find((r) => r.id === b.id)!),
            b.lastVerification ? (b.lastVerification.valid ? 'valid' : 'INVALID') : 'never',
            ...(ctx.config.mirrorDir ? [b.mirror] : []),
            b.fileName,
          ]),
          ['ID', 'TYPE', 'STATUS', 'STARTED', 'SIZE', 'ENCODING', 'VERIFIED', ...(ctx.config.mirrorDir ? ['MIRROR'] : []), 'FILE'],
        )
      : 'No backups.';
    ctx.out.result(human, { success: true, backups: items, count: items.length, total: catalog.countBackups() });
    return EXIT.ok;
  });
}

async function statsCommand(ctx: CliContext): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const statistics = catalog.statistics();
    const storage = await storageHealth(ctx.config, catalog);
    const lines = [
      `Backups:        ${statistics.totalBackups} completed, ${statistics.failedBackups} failed`,
      `Total size:     ${bytes(statistics.totalSize)}`,
      `Oldest/newest:  ${statistics.oldestBackup ?? '-'} / ${statistics.newestBackup ?? '-'}`,
      `Backup dir:     ${ctx.config.backupDir} (${storage.primary.writable ? 'writable' : `NOT writable: ${storage.primary.detail}`})`,
    ];
    if (storage.primary.sameDeviceAsDatabase) lines.push('Warning:        the backups are on the same disk as the database');
    if (storage.mirror.configured) {
      const m = storage.mirror;
      lines.push(
        `Mirror:         ${ctx.config.mirrorDir} (${m.writable ? 'writable' : `NOT writable: ${m.detail}`}), ${m.copies} copies, ${m.missing} missing`,
      );
    } else {
      lines.push('Mirror:         not configured (BACKUP_MIRROR_DIR)');
    }
    ctx.out.result(lines.join('\n'), { success: true, statistics, storage });
    return EXIT.ok;
  });
}

async function backupCommand(ctx: CliContext, opts: { type: BackupType }): Promise<ExitCode> {
  return withCatalog(ctx, (catalog) =>
    withDatabaseLock(ctx, catalog, async (lock) => {
      let row: BackupRow;
      try {
        row = await ctx.out.progress((update) =>
          createBackup(
            { config: ctx.config, catalog, log: ctx.log },
            {
              type: opts.type,
              jobId: cliRunId('backup'),
              lock: lock.guard,
              onProgress: (p) => update(p, p < 60 ? 'copying' : p < 75 ? 'packing' : p < 90 ? 'checksum' : 'mirror'),
              onBytes: (done, total) => update(60 + (15 * done) / Math.max(1, total), 'packing'),
            },
          ),
        );
      } catch (err) {
        throw new CliError(`backup failed: ${messageOf(err)}`, EXIT.failed, err instanceof AppError ? err.code : 'backup_failed');
      }
      const deleted = await applyRetention(catalog, currentSettings(ctx.config, catalog).maxBackups, ctx.log, ctx.config);
      const body = toBackupBody(row);
      ctx.out.result(
        `Backup ${row.id} completed: ${row.file_path} (${bytes(row.file_size_bytes)}, ${encodingLabel(row)})` +
          (deleted.length ? `\nRetention removed backup(s) ${deleted.join(', ')}.` : ''),
        { success: true, message: 'Backup created successfully', backup: body, retentionDeleted: deleted },
      );
      return EXIT.ok;
    }),
  );
}

async function verifyCommand(ctx: CliContext, target: string, opts: { quick?: boolean }): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const backup = findBackup(catalog, target);
    if (backup.status !== 'completed')
      throw new CliError(`backup ${backup.id} is ${backup.status}, not completed`, EXIT.invalid, 'backup_not_completed');
    const mode: VerifyMode = opts.quick ? 'quick' : 'full';
    const holder = cliRunId('verify');
    // Verifying only reads: no database lock, but a lease keeps retention off the file.
    catalog.lease(backup.id, holder, 24 * 3_600_000);
    try {
      const result = await ctx.out.progress(async (update) => {
        update(10, 'verifying');
        return verifyAndRecord(ctx.config, catalog, backup, mode);
      });
      const human = [
        `Backup ${backup.id}: ${result.valid ? 'VALID' : 'INVALID'} - ${result.message}`,
        ...result.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
        ...(result.copies && result.source === 'mirror'
          ? [`  (read from the mirror; the primary copy: ${result.copies.primary.message})`]
          : []),
        ...(result.copies && !result.valid ? [`  the mirror copy: ${result.copies.mirror.message}`] : []),
      ].join('\n');
      ctx.out.result(human, {
        success: true,
        backupId: backup.id,
        mode,
        valid: result.valid,
        message: result.message,
        checks: result.checks,
        source: result.source ?? 'primary',
        ...(result.copies ? { copies: result.copies } : {}),
      });
      return result.valid ? EXIT.ok : EXIT.invalid;
    } finally {
      catalog.unlease(backup.id, holder);
    }
  });
}

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

async function restoreCommand(
  ctx: CliContext,
  target: string | undefined,
  opts: { latestValid?: boolean; yes?: boolean },
): Promise<ExitCode> {
  if (Boolean(target) === Boolean(opts.latestValid)) {
    throw new CliError('name one backup (an id or a file) or pass --latest-valid', EXIT.usage, 'bad_request');
  }
  // Checked before anything is opened, so a script that forgot --yes leaves everything as it was.
  if (!opts.yes && !ctx.out.canAsk) {
    throw new CliError(
      'restore replaces the live database and there is no terminal to confirm on: pass --yes to restore without asking',
      EXIT.usage,
      'confirmation_required',
    );
  }
  return withCatalog(ctx, async (catalog) => {
    // Candidates are fixed before starting: the safety backup a restore takes is never one.
    const candidates = opts.latestValid ? catalog.completedBackups() : [findBackup(catalog, target!)];
    if (!candidates.length) throw new CliError('there are no completed backups to restore', EXIT.notFound, 'no_backups');
    // Asked before the lock is taken: a person thinking it over must not hold up the service.
    if (!opts.yes && !(await ctx.out.confirm(restoreQuestion(ctx, candidates[0]!, Boolean(opts.latestValid))))) {
      throw new CliError('restore cancelled; nothing was changed', EXIT.failed, 'cancelled');
    }
    return withDatabaseLock(ctx, catalog, async (lock) => {
      const skipped: { backupId: number; reason: string }[] = [];
      for (const backup of candidates) {
        try {
          const row = await ctx.out.progress((update) =>
            restoreBackup(
              { config: ctx.config, catalog, log: ctx.log },
              {
                backupId: backup.id,
                jobId: cliRunId('restore'),
                lock: lock.guard,
                onProgress: (p) => update(p, p < 25 ? 'verifying' : p < 60 ? 'safety copy' : p < 90 ? 'restoring' : 'checking'),
              },
            ),
          );
          const body = toRestoreBody(row);
          const lines = [
            ...skipped.map((s) => `Skipped backup ${s.backupId}: ${s.reason}`),
            `Restored backup ${backup.id} (${path.basename(backup.file_path)}) into ${ctx.config.databasePath}.`,
            row.safety_backup_id ? `The database as it was is kept as safety backup ${row.safety_backup_id}.` : '',
            row.error_message ? `Note: ${row.error_message}` : '',
          ].filter(Boolean);
          ctx.out.result(lines.join('\n'), { success: true, restore: body, backupId: backup.id, skipped, lock: lock.via });
          return EXIT.ok;
        } catch (err) {
          const code = err instanceof AppError ? err.code : undefined;
          if (opts.latestValid && code === 'backup_invalid') {
            skipped.push({ backupId: backup.id, reason: messageOf(err) });
            ctx.out.note(`Backup ${backup.id} failed verification; trying the one before it.`);
            continue;
          }
          if (code === 'backup_invalid') throw new CliError(messageOf(err), EXIT.invalid, code);
          throw new CliError(`restore failed: ${messageOf(err)}`, EXIT.failed, code ?? 'restore_failed');
        }
      }
      const err = new CliError(`no backup passed verification (${skipped.length} tried)`, EXIT.invalid, 'no_valid_backup');
      if (ctx.out.json) {
        ctx.out.result('', { success: false, error: { code: err.code, message: err.message }, skipped });
        return EXIT.invalid;
      }
      for (const s of skipped) ctx.out.note(`Skipped backup ${s.backupId}: ${s.reason}`);
      throw err;
    });
  });
}

async function reindexCommand(ctx: CliContext, opts: ReindexOptions): Promise<ExitCode> {
  const file = ctx.config.catalogPath;
  let movedAside: string | undefined;
  if (fs.existsSync(file)) {
    const sound = catalogIsSound(file);
    if (!sound.ok) {
      movedAside = moveCatalogAside(file);
      ctx.out.note(`The catalog was damaged (${sound.reason}); moved it to ${movedAside}.`);
    }
  }
  let report: ReindexReport;
  if (fs.existsSync(file)) {
    // A sound catalog keeps its verification and restore history: the manifests are added to it.
    const catalog = new Catalog(file);
    try {
      report = await reindex(ctx.config, catalog, ctx.log, opts);
    } finally {
      catalog.close();
    }
  } else {
    report = await rebuildCatalog(ctx.config, ctx.log, opts);
  }
  const lines = [
    `Catalog ${file}: ${report.imported.length} backup(s) restored from manifests, ${report.known.length} already listed.`,
    ...report.withoutManifest.map((f) => `No manifest (not imported): ${f}`),
    ...report.withoutFile.map((f) => `Manifest without its backup file: ${f}`),
    ...report.unreadable.map((u) => `Unreadable manifest ${u.name}: ${u.error}`),
    ...report.refused.map((r) => `Refused manifest ${r.name} (id ${r.id}, not imported): ${r.reason}`),
    ...report.conflicts.map((c) => `Manifest ${c.name} names id ${c.id}, which the catalog gives to ${c.catalogFile}`),
    ...(report.mirrorError ? [`The mirror could not be read (its backups were not looked at): ${report.mirrorError}`] : []),
  ];
  ctx.out.result(lines.join('\n'), { success: true, catalog: file, movedAside: movedAside ?? null, ...report });
  return EXIT.ok;
}

/** Builds the program. Exported for `--help` checks; `runCli` runs it. */
export function buildProgram(run: (code: ExitCode) => void): Command {
  const program = new Command('workstation-backup')
    .description(
      'Back up, verify and restore the Workstation database without the service: reads the catalog and the backup files ' +
        'directly, works with Redis and the API down. Configured by the same environment variables as the service.',
    )
    .option('--json', 'print one JSON document for scripts instead of text')
    .option('-v, --verbose', 'log progress (JSON lines) to stderr')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failed (or restore declined), 2 bad usage or configuration (or restore with no terminal and no --yes), 3 another backup or restore is running, 4 no such backup, 5 backup invalid.',
    );
  const ctx = () => cliContext(program.opts<GlobalOptions>());

  program
    .command('list')
    .description('List backups, newest first, with their last verification')
    .option('-n, --limit <n>', 'how many', positiveInt, 50)
    .action(async (opts: { limit: number }) => run(await listCommand(ctx(), opts)));

  program
    .command('backup')
    .description('Take a backup now (holds the database lock)')
    .addOption(new Option('-t, --type <type>', 'backup type').choices(BACKUP_TYPES.filter((t) => t !== 'scheduled')).default('manual'))
    .action(async (opts: { type: BackupType }) => run(await backupCommand(ctx(), opts)));

  program
    .command('verify')
    .description('Check a backup: file exists, SHA-256, opens as SQLite, integrity_check (falls back to the mirror)')
    .argument('<backup>', 'backup id, file path or file name')
    .option('--quick', 'quick_check instead of the full integrity_check')
    .action(async (target: string, opts: { quick?: boolean }) => run(await verifyCommand(ctx(), target, opts)));

  program
    .command('restore')
    .description('Verify a backup, keep a safety backup of the database, copy the backup in, check the result')
    .argument('[backup]', 'backup id, file path or file name')
    .option('--latest-valid', 'restore the newest backup that passes full verification')
    .option('-y, --yes', 'restore without asking (required when not run from a terminal)')
    .action(async (target: string | undefined, opts: { latestValid?: boolean; yes?: boolean }) =>
      run(await restoreCommand(ctx(), target, opts)),
    );

  program
    .command('reindex')
    .description('Rebuild a lost or damaged catalog from the manifests beside the backups (primary and mirror)')
    .option('--trust-ids', 'import manifests whose id looks implausible (names, duplicates and MACs are still checked)')
    .option('--accept-unsigned', 'with encryption on, import manifests that carry no MAC (written before manifests were signed)')
    .action(async (opts: ReindexOptions) => run(await reindexCommand(ctx(), opts)));

  program
    .command('stats')
    .description('Backup statistics and the state of the backup directory and the mirror')
    .action(async () => run(await statsCommand(ctx())));

  return program;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  program.exitOverride();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors.
      if (err.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const out = new Output(json);
    if (err instanceof CliError) {
      out.error(err);
      return err.exitCode;
    }
    out.error(new CliError(messageOf(err), EXIT.failed, (err as { code?: string }).code ?? 'error'));
    return EXIT.failed;
  }
}
