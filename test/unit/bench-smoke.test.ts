import { describe, expect, it } from 'vitest';
import { median, percentile, summarize } from '../../bench/lib/stats.js';
import { format, renderTable } from '../../bench/lib/table.js';

// The benchmark's verdicts are only as good as its arithmetic and its table; the benchmark itself
// (`npm run bench`) is never part of the test suite.
describe('benchmark statistics', () => {
  it('takes nearest-rank percentiles that never interpolate past the data', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted on purpose
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('reports the median and the range of runs', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarize([5, 9, 1])).toEqual({ median: 5, min: 1, max: 9, n: 3 });
  });
});

describe('benchmark table', () => {
  it('says which targets are missed and which tools never finished', () => {
    const table = renderTable([
      {
        section: '1 Backup',
        measure: 'time to a durable copy',
        method: 'ours',
        unit: 'ms',
        values: [1500, 1200, 1300],
        ratio: { value: 1.3, to: 'cp+sync' },
        target: { met: false, text: '≤ 1.0× VACUUM INTO' },
      },
      {
        section: '1 Backup',
        measure: 'time to a durable copy',
        method: 'sqlite3 .backup | sync',
        unit: 'ms',
        values: [],
        failures: '3× did not finish within 60 s',
      },
      {
        section: '4 Verify',
        measure: 'SHA-256',
        method: 'sha256File',
        unit: 'MB/s',
        values: [900, 800, 1000],
        target: { met: true, text: '≥ 700 MB/s' },
      },
    ]);
    const lines = table.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[2]).toBe(
      '| 1 Backup | time to a durable copy | ours | 1.30 s | 1.20 s – 1.50 s | 3 | 1.30× cp+sync | ❌ MISSED: ≤ 1.0× VACUUM INTO |',
    );
    // A pipe inside a cell must not split the markdown row.
    expect(lines[3]).toContain('sqlite3 .backup \\| sync | did not finish | — | 0 (3× did not finish within 60 s)');
    expect(lines[4]).toContain('| 900 MB/s | 800 MB/s – 1000 MB/s | 3 |  | ✅ met: ≥ 700 MB/s |');
  });

  it('formats durations, sizes and rates for people', () => {
    expect(format(0.42, 'ms')).toBe('0.4 ms');
    expect(format(42.4, 'ms')).toBe('42 ms');
    expect(format(4242, 'ms')).toBe('4.24 s');
    expect(format(32.94, 'MiB')).toBe('32.9 MiB');
    expect(format(Number.NaN, 'ms')).toBe('—');
  });
});
