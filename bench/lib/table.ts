import { summarize } from './stats.js';

export type Unit = 'ms' | 'MB/s' | 'x' | 'MiB' | 'jobs/s' | '%';

export interface Target {
  /** What the target says, e.g. "≤ 1.0× VACUUM INTO". */
  text: string;
  met: boolean;
}

/** One line of the result table. `values` holds one number per run (or per sample for latencies). */
export interface Row {
  section: string;
  measure: string;
  method: string;
  unit: Unit;
  values: number[];
  /** When the method did not produce a value in some runs (e.g. never finished). */
  failures?: string;
  /** Ratio of this row's median to its reference's median, and the reference's name. */
  ratio?: { value: number; to: string };
  target?: Target;
}

export function format(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '—';
  switch (unit) {
    case 'ms':
      return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : value >= 10 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`;
    case 'MB/s':
      return `${value.toFixed(0)} MB/s`;
    case 'x':
      return `${value.toFixed(2)}×`;
    case 'MiB':
      return `${value.toFixed(1)} MiB`;
    case 'jobs/s':
      return `${value.toFixed(1)} jobs/s`;
    case '%':
      return `${value.toFixed(1)} %`;
  }
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The one markdown table `npm run bench` prints. */
export function renderTable(rows: Row[]): string {
  const out = [
    '| Section | Measure | Method | Median | Min–max | Runs | Ratio (same run) | Target |',
    '|---|---|---|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const s = r.values.length ? summarize(r.values) : undefined;
    const median = s ? format(s.median, r.unit) : 'did not finish';
    const range = s ? `${format(s.min, r.unit)} – ${format(s.max, r.unit)}` : '—';
    const runs = `${s?.n ?? 0}${r.failures ? ` (${r.failures})` : ''}`;
    const ratio = r.ratio && Number.isFinite(r.ratio.value) ? `${r.ratio.value.toFixed(2)}× ${r.ratio.to}` : '';
    const target = r.target ? `${r.target.met ? '✅ met' : '❌ MISSED'}: ${r.target.text}` : '';
    out.push(`| ${[r.section, r.measure, r.method, median, range, runs, ratio, target].map(cell).join(' | ')} |`);
  }
  return out.join('\n');
}
