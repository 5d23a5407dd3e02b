import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { BackupRow, Catalog } from '../../src/shared/catalog/catalog.js';
import type { Config } from '../../src/shared/runtime/config.js';
import type { Bench } from '../lib/context.js';
import { api, expectStatus } from '../lib/http.js';
import { LoopMonitor, runShell, type WorkerProcess } from '../lib/procs.js';
import { median } from '../lib/stats.js';
import { Writer } from '../lib/writer.js';

export interface RestoreDeps {
  config: Config;
  catalog: Catalog;
  producerUrl: string;
  worker: WorkerProcess;
  scratch: string;
  /** Median of the writer's idle max commit latency, measured in the backup section. */
  writerIdleMax: number;
}

/** Forgets every verification of a backup, so that its next restore checks it in full. */
export function forgetVerifications(catalogPath: string, backupId: number): void {
  const db = new Database(catalogPath);
  try {
    db.pragma('busy_timeout = 10000');
    db.prepare('DELETE FROM verification WHERE backup_id = ?').run(backupId);
  } finally {
    db.close();
  }
}

/**
 * Restore through the API, from the request to the answer that the live database is restored and
 * checked (verification, safety backup and the check after the copy included), while an application
 * process keeps the database open and commits every few milliseconds. Each run restores the backup
 * twice: first never verified (integrity_check in the restore), then again, when the first
 * restore's full verification of the same bytes lets it check with quick_check (the usual case
 * for a backup the verification sweep has checked).
 */
export async function benchRestore(bench: Bench, deps: RestoreDeps, backup: BackupRow): Promise<void> {
  const t = {
    api: [] as number[],
    verified: [] as number[],
    cp: [] as number[],
    stall: [] as number[],
    loop: [] as number[],
    noise: [] as number[],
  };
  const loop = new LoopMonitor();
  let writerErrors = 0;
  const SPLIT = 'backup copied in and checked';
  const splitsBefore = deps.worker.logged(SPLIT).length;
  const writer = await Writer.start(deps.config.databasePath, bench.opts.writerEveryMs);
  try {
    for (let run = 0; run < bench.opts.runs; run++) {
      bench.progress(`restore run ${run + 1}/${bench.opts.runs}`);
      const dest = path.join(deps.scratch, 'restore-reference.db');
      const ref = await runShell('cp "$1" "$2" && sync "$2"', [backup.file_path, dest], 3_600_000);
      fs.rmSync(dest, { force: true });
      if (ref.code !== 0) throw new Error(`cp failed: ${ref.stderr}`);
      t.cp.push(ref.ms);

      forgetVerifications(deps.config.catalogPath, backup.id);
      for (const times of [t.api, t.verified]) {
        await deps.worker.loopStall();
        writer.mark();
        loop.take();
        const res = await api(deps.producerUrl, 'POST', `/api/backups/${backup.id}/restore`);
        t.noise.push(loop.take());
        const samples = await writer.take();
        t.loop.push(await deps.worker.loopStall());
        expectStatus(res, 200, 'POST /api/backups/:id/restore');
        const restore = res.body.restore as { status: string; safetyBackupId: number | null };
        if (restore.status !== 'completed') throw new Error(`restore ended ${restore.status}`);
        times.push(res.ms);
        t.stall.push(Math.max(0, ...samples.latencies));
        writerErrors += samples.errors;
        if (samples.errors) bench.notes.push(`Writer errors during restore: ${samples.errors} (${samples.lastError}).`);
        if (restore.safetyBackupId) {
          const safety = deps.catalog.getBackup(restore.safetyBackupId);
          if (safety) fs.rmSync(safety.file_path, { force: true });
          deps.catalog.deleteBackup(restore.safetyBackupId);
        }
      }
    }
  } finally {
    loop.stop();
    await writer.stop();
  }
  // The worker logs each restore's split: checks (with the safety backup beside them), then the
  // copy into the live database (with its checkpoint and quick_check). Runs alternate: never
  // verified, then verified before.
  const splits = deps.worker.logged(SPLIT).slice(splitsBefore);
  const part = (kind: number, key: string) =>
    (median(splits.filter((_, i) => i % 2 === kind).map((e) => Number(e[key]))) / 1000).toFixed(2);
  if (splits.length >= 2) {
    bench.notes.push(
      `Restore, where the time went (worker log, medians): never verified — checks ${part(0, 'checksMs')} s ` +
        `(integrity_check beside the safety backup), copy ${part(0, 'copyMs')} s (of which the backup API's copy into the live ` +
        `database until it committed ${part(0, 'copiedMs')} s, then its checkpoint beside quick_check); verified before — ` +
        `checks ${part(1, 'checksMs')} s, copy ${part(1, 'copyMs')} s (${part(1, 'copiedMs')} s to the commit).`,
    );
  }
  const section = '5 Restore (RTO)';
  const size = bench.opts.sizeBytes === 1 << 30 ? '' : ' (targets are for 1 GiB)';
  for (const [values, method] of [
    [t.api, 'POST /api/backups/:id/restore, backup never verified (integrity_check ∥ safety backup, copy, quick_check)'],
    [t.verified, 'POST /api/backups/:id/restore, same bytes passed integrity_check before (checksum ∥ safety backup, …)'],
  ] as const) {
    const ratio = median(values) / median(t.cp);
    const seconds = median(values) / 1000;
    bench.rows.push({
      section,
      measure: 'request → restored, checked live database',
      method,
      unit: 'ms',
      values,
      ratio: { value: ratio, to: 'cp+sync' },
      target: {
        met: seconds <= 15 && ratio <= 6,
        text: `≤ 15 s (is ${seconds.toFixed(1)} s), ≤ 6× cp+sync (is ${ratio.toFixed(2)}×)${size}`,
      },
    });
  }
  bench.rows.push({
    section,
    measure: 'request → restored, checked live database',
    method: 'cp + sync of the backup file',
    unit: 'ms',
    values: t.cp,
  });
  bench.rows.push({
    section,
    measure: "application's longest write stall",
    method: `writer holding the database open, committing every ${bench.opts.writerEveryMs} ms`,
    unit: 'ms',
    values: t.stall,
    ratio: { value: median(t.stall) / deps.writerIdleMax, to: 'idle max commit' },
    ...(writerErrors ? { failures: `${writerErrors} writer errors` } : {}),
  });
  bench.rows.push({
    section,
    measure: 'worker event loop, longest stall',
    method: 'worker process running the restore',
    unit: 'ms',
    values: t.loop,
    target: { met: Math.max(...t.loop) <= 100, text: `never > 100 ms (worst ${Math.max(...t.loop).toFixed(0)} ms)` },
  });
  bench.rows.push({
    section,
    measure: 'worker event loop, longest stall',
    method: 'noise floor: the benchmark process, waiting on the restore',
    unit: 'ms',
    values: t.noise,
  });
}
