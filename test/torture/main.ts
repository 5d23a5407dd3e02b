/**
 * `npm run torture -- --seconds N --seed S [--interval MS] [--moments K] [--keep] [--json FILE]`:
 * a torture run of the WAL archive against an application whose every commit is logged; prints
 * what it found and exits 1 on a silent loss, a state that never existed or an invisible gap.
 */
import fs from 'node:fs';
import { formatReport } from './report.js';
import { runTorture } from './run.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seconds = Number(arg('seconds') ?? 60);
const seed = Number(arg('seed') ?? Math.floor(Math.random() * 2 ** 31));
const started = Date.now();
const report = await runTorture({
  seconds,
  seed,
  intervalMs: arg('interval') ? Number(arg('interval')) : undefined,
  moments: arg('moments') ? Number(arg('moments')) : Math.max(20, Math.round(seconds / 3)),
  keep: process.argv.includes('--keep'),
  log: (line) => console.log(line),
});
const json = arg('json');
if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2));
console.log(formatReport(report, Date.now() - started));
process.exit(report.failures.length ? 1 : 0);
