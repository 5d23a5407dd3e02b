import { verifyOne } from '../../shared/operations/verify-one.js';
import { cliRun, findBackup, withCatalog, type CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

async function verify(ctx: CliContext, target: string, opts: { quick?: boolean }): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const backupId = findBackup(catalog, target).id;
    const mode = opts.quick ? 'quick' : 'full';
    const outcome = await ctx.out.progress((update) =>
      verifyOne({ config: ctx.config, catalog, log: ctx.log }, { ...cliRun(ctx, 'verify', (p) => update(p, 'verifying')), backupId, mode }),
    );
    if (!outcome.completed)
      throw new CliError(`backup ${backupId} is ${outcome.backup.status}, not completed`, EXIT.invalid, 'backup_not_completed');
    const { result } = outcome;
    const human = [
      `Backup ${backupId}: ${result.valid ? 'VALID' : 'INVALID'} - ${result.message}`,
      ...result.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
      ...(result.copies && result.source === 'mirror'
        ? [`  (read from the mirror; the primary copy: ${result.copies.primary.message})`]
        : []),
      ...(result.copies && !result.valid ? [`  the mirror copy: ${result.copies.mirror.message}`] : []),
    ].join('\n');
    ctx.out.result(human, {
      success: true,
      backupId,
      mode,
      valid: result.valid,
      message: result.message,
      checks: result.checks,
      source: result.source ?? 'primary',
      ...(result.copies ? { copies: result.copies } : {}),
    });
    return result.valid ? EXIT.ok : EXIT.invalid;
  });
}

export const registerVerify: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('verify')
    .description('Check a backup: file exists, SHA-256, opens as SQLite, integrity_check (falls back to the mirror)')
    .argument('<backup>', 'backup id, file path or file name')
    .option('--quick', 'quick_check instead of the full integrity_check')
    .action(async (target: string, opts: { quick?: boolean }) => run(await verify(ctx(), target, opts)));
};
