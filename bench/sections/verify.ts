import { sha256File } from '../../src/shared/codec/checksum.js';
import type { BackupRow } from '../../src/shared/catalog/catalog.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { verifyBackup } from '../../src/shared/verify/verify.js';
import type { Bench } from '../lib/context.js';
import { runShell } from '../lib/procs.js';
import { median, timed } from '../lib/stats.js';

const NO_LIMIT = 3_600_000;

async function shell(script: string, file: string): Promise<number> {
  const r = await runShell(script, [file], NO_LIMIT);
  if (r.code !== 0) throw new Error(`${script} failed (${r.code}): ${r.stderr}`);
  // The CLI prints "ok" when the check passes; anything else means the comparison is not like for like.
  if (/check/.test(script) && r.stdout.trim().split('\n').at(-1) !== 'ok') throw new Error(`${script}: ${r.stdout.slice(0, 300)}`);
  return r.ms;
}

/** Full and quick verification of one backup, against sha256sum and the sqlite3 CLI on the same file. */
export async function benchVerify(bench: Bench, config: Config, backup: BackupRow): Promise<void> {
  const file = backup.file_path;
  const bytes = backup.file_size_bytes ?? 0;
  const t = {
    sha: [] as number[],
    shaCli: [] as number[],
    full: [] as number[],
    quick: [] as number[],
    fullRef: [] as number[],
    quickRef: [] as number[],
  };
  for (let run = 0; run < bench.opts.runs; run++) {
    bench.progress(`verify run ${run + 1}/${bench.opts.runs}`);
    t.sha.push((await timed(() => sha256File(file))).ms);
    t.shaCli.push(await shell('sha256sum "$1" >/dev/null', file));
    const full = await timed(() => verifyBackup(config, backup, 'full'));
    if (!full.value.valid) throw new Error(`full verification failed: ${full.value.message}`);
    t.full.push(full.ms);
    t.fullRef.push(await shell(`sha256sum "$1" >/dev/null && sqlite3 -readonly "$1" 'PRAGMA integrity_check'`, file));
    const quick = await timed(() => verifyBackup(config, backup, 'quick'));
    if (!quick.value.valid) throw new Error(`quick verification failed: ${quick.value.message}`);
    t.quick.push(quick.ms);
    t.quickRef.push(await shell(`sha256sum "$1" >/dev/null && sqlite3 -readonly "$1" 'PRAGMA quick_check'`, file));
  }
  const mbs = (ms: number[]) => ms.map((m) => bytes / 1e6 / (m / 1000));
  const section = '4 Verify';
  const sha = mbs(t.sha);
  const shaCli = mbs(t.shaCli);
  bench.rows.push({
    section,
    measure: 'SHA-256 throughput',
    method: 'sha256File (checksum.ts)',
    unit: 'MB/s',
    values: sha,
    ratio: { value: median(sha) / median(shaCli), to: 'sha256sum' },
    target: { met: median(sha) >= 700, text: '≥ 700 MB/s' },
  });
  bench.rows.push({ section, measure: 'SHA-256 throughput', method: 'sha256sum', unit: 'MB/s', values: shaCli });
  const fullRatio = median(t.full) / median(t.fullRef);
  bench.rows.push({
    section,
    measure: 'full verification',
    method: 'verifyBackup full (checksum + integrity_check)',
    unit: 'ms',
    values: t.full,
    ratio: { value: fullRatio, to: 'sha256sum + CLI integrity_check' },
    target: { met: fullRatio <= 1.1, text: `≤ 1.1× sha256sum + CLI integrity_check (is ${fullRatio.toFixed(2)}×)` },
  });
  bench.rows.push({
    section,
    measure: 'full verification',
    method: 'sha256sum + sqlite3 CLI integrity_check',
    unit: 'ms',
    values: t.fullRef,
  });
  bench.rows.push({
    section,
    measure: 'quick verification',
    method: 'verifyBackup quick (checksum + quick_check)',
    unit: 'ms',
    values: t.quick,
    ratio: { value: median(t.quick) / median(t.quickRef), to: 'sha256sum + CLI quick_check' },
  });
  bench.rows.push({
    section,
    measure: 'quick verification',
    method: 'sha256sum + sqlite3 CLI quick_check',
    unit: 'ms',
    values: t.quickRef,
  });
}
