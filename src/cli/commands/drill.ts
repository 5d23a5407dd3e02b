import { cliRunId } from '../../shared/runtime/process-owner.js';
import { verifyArchive } from '../../shared/wal/archive-verify.js';
import { alertSenderFor } from '../../shared/observability/alerts.js';
import { createOpsMetrics } from '../../shared/observability/metrics.js';
import { runDrill } from '../../shared/operations/restore-drill.js';
import { alertDrillFailed, type DrillOutcome } from '../../shared/wal/drill.js';
import { withCatalog, type CliContext } from '../context.js';
import { EXIT, type ExitCode } from '../output.js';
import type { RegisterCommand } from './command.js';

/** One line per target of a drill, for `drill` and `window`. */
export function describeDrill(drill: DrillOutcome): string[] {
  return [
    `Restore drill ${drill.id} (${drill.completedAt}): ${drill.ok ? 'PASSED' : 'FAILED'}, latest point restored in ${(drill.durationMs / 1_000).toFixed(1)} s (RTO)`,
    ...drill.targets.map((t) => {
      const what = t.kind === 'latest' ? 'latest point' : `random point ${t.at}`;
      const counts = t.rowCounts
        ? t.rowCounts.compared
          ? t.rowCounts.differences.length
            ? ', row counts DIFFER from the live database'
            : ', row counts match the live database'
          : `, row counts not compared (${t.rowCounts.note})`
        : '';
      return t.ok
        ? `  ok   ${what}: generation ${t.generation}, ${t.segmentsApplied} segment(s), as of ${t.restoredTo}, ${(t.durationMs / 1_000).toFixed(1)} s, integrity ok${counts}`
        : `  FAIL ${what}: ${t.reason}`;
    }),
  ];
}

/**
 * `drill`: a restore drill now, with the service down or up: the latest point and a random moment
 * of the recovery window restored into temp files in BACKUP_DIR (removed afterwards), each checked
 * with integrity_check; the live database is only read. With `--verify`, the archive is verified
 * first (which may shrink the window). Recorded in the catalog like the scheduled ones.
 */
async function drill(ctx: CliContext, opts: { verify?: boolean }): Promise<ExitCode> {
  return withCatalog(ctx, async (catalog) => {
    const verification = opts.verify ? await verifyArchive(ctx.config, catalog) : undefined;
    const outcome = await runDrill({ config: ctx.config, catalog }, { trigger: 'cli', runId: cliRunId('drill') });
    if (!outcome.ok && ctx.config.alertWebhookUrl) {
      // The same alert as a scheduled drill's: a failed drill needs a person whoever ran it.
      const alerts = alertSenderFor(ctx.config, ctx.log, createOpsMetrics());
      alertDrillFailed(alerts, outcome);
      await alerts.flush(5_000);
    }
    const lines = [
      ...(verification
        ? verification.generations.map((g) =>
            g.ok
              ? `Generation ${g.generation}: verified, ${g.segmentsChecked} segment(s)` +
                (g.readFromMirror.length ? ` (${g.readFromMirror.length} read from the mirror: the primary copy is missing or bad)` : '')
              : `Generation ${g.generation}: BROKEN: ${g.reason}`,
          )
        : []),
      ...describeDrill(outcome),
    ];
    ctx.out.result(lines.join('\n'), {
      success: outcome.ok,
      drill: outcome,
      ...(verification ? { verification } : {}),
    });
    return outcome.ok ? EXIT.ok : EXIT.failed;
  });
}

export const registerDrill: RegisterCommand = (program, { ctx, run }) => {
  program
    .command('drill')
    .description(
      'Restore drill now: restore the latest point and a random moment of the recovery window into temp files, check them, record the result (the live database is only read)',
    )
    .option('--verify', 'verify the WAL archive first (segments, chain, snapshots)')
    .action(async (opts: { verify?: boolean }) => run(await drill(ctx(), opts)));
};
