/**
 * What compression costs a backup and a restore, on a database shaped like the application's
 * (bench/lib/dbgen.ts): createBackup in each BACKUP_COMPRESSION mode while a writer process
 * commits every 5 ms (its commit p99 against its idle p99), and what restoring each backup costs
 * (decode + checksum, the restore's verification, restoreBackup), all as ratios to the
 * uncompressed backup measured in the same run. Prints one markdown table with the targets.
 *
 *   npm run bench:compression -- [size in MB, default 1024] [runs, default 3]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Catalog } from '../src/shared/catalog/catalog.js';
import { createLogger } from '../src/shared/runtime/logger.js';
import { compressionRun, MODES, type Mode, type ModeRun, type Run } from './lib/compression-runs.js';
import { serviceEnv } from './lib/context.js';
import { generateDatabase } from './lib/dbgen.js';
import { describeMachine } from './lib/machine.js';
import { median } from './lib/stats.js';
import { renderTable, type Row, type Unit } from './lib/table.js';

const SECTION = '3 Compression';
/** Issue 24's targets, as ratios to the uncompressed backup of the same run. */
const BACKUP_TARGET: Partial<Record<Mode, number>> = { zstd: 1.5, gzip: 2.5 };
const RESTORE_TARGET = 1.3;
const COMMIT_P99_TARGET = 1.5;

const target = (limit: number, ratio: number, of: string) => ({
  met: ratio <= limit,
  text: `≤ ${limit}× ${of} (is ${ratio.toFixed(2)}×)`,
});

function rows(runs: Run[]): Row[] {
  const out: Row[] = [];
  const values = (mode: Mode, key: keyof ModeRun) => runs.map((r) => r.modes[mode][key]);
  const byMode = (
    measure: string,
    method: (m: Mode) => string,
    key: keyof ModeRun,
    unit: Unit,
    limit?: (m: Mode) => number | undefined,
  ) => {
    const base = median(values('none', key));
    for (const mode of MODES) {
      const ratio = median(values(mode, key)) / base;
      out.push({
        section: SECTION,
        measure,
        method: method(mode),
        unit,
        values: values(mode, key),
        ...(mode === 'none' ? {} : { ratio: { value: ratio, to: 'none' } }),
        ...(limit?.(mode) ? { target: target(limit(mode)!, ratio, 'none') } : {}),
      });
    }
  };
  const backupMethod = (m: Mode) => `createBackup, BACKUP_COMPRESSION=${m}`;
  byMode('backup time, writer committing every 5 ms', backupMethod, 'backupMs', 'ms', (m) => BACKUP_TARGET[m]);
  byMode('backup file size', (m) => m, 'bytes', 'MiB');
  for (const row of out.slice(-3)) row.values = row.values.map((b) => b / 2 ** 20);

  const idle = runs.map((r) => r.idleP99);
  out.push({ section: SECTION, measure: 'writer commit p99', method: 'idle (no backup running)', unit: 'ms', values: idle });
  for (const mode of MODES) {
    const ratio = median(values(mode, 'commitP99')) / median(idle);
    out.push({
      section: SECTION,
      measure: 'writer commit p99',
      method: `during the ${mode} backup`,
      unit: 'ms',
      values: values(mode, 'commitP99'),
      ratio: { value: ratio, to: 'idle' },
      ...(mode === 'none' ? {} : { target: target(COMMIT_P99_TARGET, ratio, 'idle') }),
    });
  }
  byMode(
    'restore: decode + checksum',
    (m) => (m === 'none' ? 'none: SHA-256 of the file' : `${m}: decodedCopy (decoded into a temp file, hashed as read)`),
    'decodeMs',
    'ms',
  );
  byMode('restore: verification', (m) => `${m}: checkCopy full (checksum, decode, opens, integrity_check)`, 'verifyMs', 'ms');
  byMode(
    'restore end to end',
    (m) => `${m}: restoreBackup (verify ∥ safety backup, copy-in, quick_check)`,
    'restoreMs',
    'ms',
    (m) => (m === 'none' ? undefined : RESTORE_TARGET),
  );
  return out;
}

async function main(): Promise<void> {
  const sizeMb = Number(process.argv[2] ?? 1024);
  const runCount = Number(process.argv[3] ?? 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-compression-'));
  const env = serviceEnv(dir, `bench-compression-${process.pid}`);
  const catalog = new Catalog(env.config.catalogPath);
  try {
    const progress = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
    progress(`generating a ${sizeMb} MB database`);
    const db = generateDatabase(env.config.databasePath, sizeMb * 2 ** 20);
    const setup = {
      ctx: { catalog, log: createLogger({ logLevel: 'silent' }, 'bench') },
      configs: Object.fromEntries(MODES.map((m) => [m, env.with({ BACKUP_COMPRESSION: m })])) as Record<Mode, typeof env.config>,
      writerEveryMs: 5,
      idleWindowMs: 3_000,
    };
    const runs: Run[] = [];
    for (let i = 0; i < runCount; i++) {
      progress(`run ${i + 1} of ${runCount}`);
      runs.push(await compressionRun(setup));
    }
    console.log(`## Compression: ${(db.bytes / 2 ** 20).toFixed(0)} MiB database, ${runCount} runs, medians\n`);
    for (const line of describeMachine(dir)) console.log(`- ${line}`);
    console.log(`- UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 'unset (4)'}, ${os.availableParallelism()} cores\n`);
    console.log(renderTable(rows(runs)));
  } finally {
    catalog.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
