/** The run's result as a person reads it. */
import type { TortureReport } from './run.js';

export function formatReport(r: TortureReport, tookMs: number): string {
  const lines = [
    '',
    `torture run, seed ${r.seed} (replay: npm run torture -- --seconds ${r.seconds} --seed ${r.seed}), ${(tookMs / 1_000).toFixed(0)} s`,
    `  scenarios run:      ${r.scenarios.length} (${r.scenarios.map((s) => `${s.n}:${s.build}/${s.sqlite}`).join(', ')})`,
    `  commits logged:     ${r.commits}`,
    `  faults:             ${r.faults.length} (${[...new Set(r.faults.map((f) => f.kind))].join(', ') || 'none'})`,
    `  restores checked:   ${r.restoresChecked}`,
    `  states matched:     ${r.statesMatched}`,
    `  gaps announced:     ${r.gapsAnnounced} in the window; ${r.announcedLosses} restore(s) short of commits a gap or /health announced`,
    `  provoked gaps:      ${r.provokedGaps}, visible: ${r.visibleGaps}`,
    `  never existed:      ${r.neverExisted}`,
    `  silent losses:      ${r.silentLosses}`,
  ];
  lines.push(
    `  phases (s):         ${Object.entries(r.phases)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
  );
  for (const g of r.generations)
    lines.push(`  generation ${g.id} began ${g.startedAt} (${g.reason}), snapshot ${g.snapshotAt ?? 'none'}, ${g.segments} segment(s)`);
  for (const s of r.scenarios) {
    const steps = Object.entries(s.steps)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    lines.push(`  scenario ${s.n} (${s.build}, SQLite ${s.sqlite}, ${s.seconds} s): ${s.commits} commits, ${s.refused} refused; ${steps}`);
    for (const f of s.faults) lines.push(`    fault ${f}`);
    for (const n of s.notes) lines.push(`    ${n}`);
  }
  if (r.failures.length) {
    lines.push(`  FAILURES (${r.failures.length}):`);
    for (const f of r.failures) lines.push(`    seed ${f.seed}, scenario ${f.scenario}, ${f.kind}: ${f.what}`);
    if (r.keptDir) lines.push(`  files kept in ${r.keptDir}`);
  } else lines.push('  no failures');
  return lines.join('\n');
}
