import { Option } from 'commander';
import { BACKUP_TYPES, type BackupType } from '../../shared/domain/backup-types.js';
import { toBackupBody } from '../../shared/domain/presenters.js';
import { backupNow } from '../../shared/operations/backup-now.js';
import { cliFailure, cliRun, withCatalog, withOperationDeps, type CliContext } from '../context.js';
import { EXIT, bytes, encodingLabel, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

const stage = (p: number) => (p < 60 ? 'copying' : p < 75 ? 'packing' : p < 90 ? 'checksum' : 'mirror');

async function backup(ctx: CliContext, opts: { type: BackupType }): Promise<ExitCode> {
  return withCatalog(ctx, (catalog) =>
    withOperationDeps(ctx, catalog, async (deps) => {
      const { row, retentionDeleted } = await ctx.out
        .progress((update) =>
          backupNow(deps, {
            ...cliRun(
              ctx,
              'backup',
              (p) => update(p, stage(p)),
              (done, total) => update(60 + (15 * done) / Math.max(1, total), 'packing'),
            ),
            type: opts.type,
          }),
        )
        .catch((err: unknown) => {
          throw cliFailure(err, 'backup');
        });
      ctx.out.result(
        `Backup ${row.id} completed: ${row.file_path} (${bytes(row.file_size_bytes)}, ${encodingLabel(row)})` +
          (retentionDeleted.length ? `\nRetention removed backup(s) ${retentionDeleted.join(', ')}.` : ''),
        { success: true, message: 'Backup created successfully', backup: toBackupBody(row), retentionDeleted },
      );
      return EXIT.ok;
    }),
  );
}

export const registerBackup: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('backup')
    .description('Take a backup now (holds the database lock)')
    .addOption(new Option('-t, --type <type>', 'backup type').choices(BACKUP_TYPES.filter((t) => t !== 'scheduled')).default('manual'))
    .action(async (opts: { type: BackupType }) => run(await backup(ctx(), opts)));
};
