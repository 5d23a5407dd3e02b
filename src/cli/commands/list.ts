import { InvalidArgumentError } from 'commander';
import { toBackupBody } from '../../shared/domain/presenters.js';
import { MIRROR } from '../../shared/storage/mirror.js';
import { withCatalog, type CliContext } from '../context.js';
import { EXIT, bytes, encodingLabel, table, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

const positiveInt = (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(v);
};

async function list(ctx: CliContext, opts: { limit: number }): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const rows = catalog.listBackups({ limit: opts.limit });
    const mirrored = new Map(catalog.copies(MIRROR).map((c) => [c.backup_id, c.status]));
    const items = rows.map((r) => {
      const v = catalog.lastVerification(r.id);
      return {
        ...toBackupBody(r),
        encrypted: Boolean(r.encryption),
        lastVerification: v ? { verifiedAt: v.verified_at, valid: v.valid === 1, message: v.message } : null,
        mirror: ctx.config.mirrorUrl ? (mirrored.get(r.id) ?? 'missing') : null,
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
            ...(ctx.config.mirrorUrl ? [b.mirror] : []),
            b.fileName,
          ]),
          ['ID', 'TYPE', 'STATUS', 'STARTED', 'SIZE', 'ENCODING', 'VERIFIED', ...(ctx.config.mirrorUrl ? ['MIRROR'] : []), 'FILE'],
        )
      : 'No backups.';
    ctx.out.result(human, { success: true, backups: items, count: items.length, total: catalog.countBackups() });
    return EXIT.ok;
  });
}

export const registerList: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('list')
    .description('List backups, newest first, with their last verification')
    .option('-n, --limit <n>', 'how many', positiveInt, 50)
    .action(async (opts: { limit: number }) => run(await list(ctx(), opts)));
};
