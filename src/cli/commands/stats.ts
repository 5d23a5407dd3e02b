import { storageHealth } from '../../shared/storage/health.js';
import { withCatalog, type CliContext } from '../context.js';
import { EXIT, bytes, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

async function stats(ctx: CliContext): Promise<ExitCode> {
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
        `Mirror:         ${m.location} (${m.writable ? m.detail : `NOT usable: ${m.detail}`}), ${m.copies} copies, ${m.missing} missing`,
      );
      if (m.outage) lines.push(`Warning:        copies to the mirror have been failing since ${m.outage.since}: ${m.outage.reason}`);
    } else {
      lines.push('Mirror:         not configured (BACKUP_MIRROR_DIR or BACKUP_MIRROR_URL)');
    }
    ctx.out.result(lines.join('\n'), { success: true, statistics, storage });
    return EXIT.ok;
  });
}

export const registerStats: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('stats')
    .description('Backup statistics and the state of the backup directory and the mirror')
    .action(async () => run(await stats(ctx())));
};
