import { walStatus } from '../../shared/wal/wal-health.js';
import { drillOf } from '../../shared/wal/drill.js';
import { recoveryWindow } from '../../shared/wal/window.js';
import { withBucket, withCatalog, type CliContext } from '../context.js';
import { EXIT, bytes, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';
import { describeDrill } from './drill.js';

/** `window`: the moments the WAL archive can restore to, generation by generation, gaps shown. */
async function showWindow(ctx: CliContext): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const window = recoveryWindow(catalog);
    const status = walStatus(ctx.config, catalog);
    const lines = [
      `WAL archiving: ${status.enabled ? 'on' : 'off'}${status.enabled ? (status.running ? `, lag ${status.lagSeconds ?? '?'} s` : ', no archiver running') : ''}`,
      window.earliest
        ? `Recovery window: ${window.earliest} to ${window.latest}`
        : 'Recovery window: empty (no generation with a snapshot)',
    ];
    let previous: (typeof window.generations)[number] | undefined;
    for (const g of window.generations) {
      if (previous) lines.push(`  gap ${previous.end} to ${g.start}: ${g.reason}`);
      lines.push(
        `  generation ${g.id}: ${g.start} to ${g.end}, snapshot backup ${g.snapshotBackupId}, ${g.segments} segment(s), ${bytes(g.bytes)}`,
      );
      if (g.verification && !g.verification.ok) lines.push(`    verification ${g.verification.at} FAILED: ${g.verification.reason}`);
      previous = g;
    }
    const last = catalog.drills.lastDrill();
    const lastDrill = last ? drillOf(last) : null;
    lines.push(
      ...(lastDrill ? describeDrill(lastDrill) : ['Restore drill: none yet (RESTORE_DRILL_SCHEDULE, or: workstation-backup drill)']),
    );
    ctx.out.result(lines.join('\n'), {
      success: true,
      enabled: status.enabled,
      earliest: window.earliest,
      latest: window.latest,
      lagSeconds: status.lagSeconds,
      generations: window.generations,
      gaps: window.gaps,
      lastDrill,
    });
    return EXIT.ok;
  });
}

export const registerWindow: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('window')
    .description('Show the moments the WAL archive can restore to (restore --to <time>), generation by generation')
    .option('--from <url>', 'read this bucket (s3://bucket/prefix) alone instead of the configured mirror and catalog')
    .action(async (opts: { from?: string }) => run(await withBucket(ctx(), opts.from, showWindow)));
};
