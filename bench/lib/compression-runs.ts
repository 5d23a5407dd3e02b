/**
 * One run of the compression benchmark: a backup in every BACKUP_COMPRESSION mode through
 * createBackup while the application's writer commits every few milliseconds, then, writer
 * stopped, what restoring each of those backups costs: its decode and checksum, the verification
 * a restore runs (checkCopy), and the restore itself (restoreBackup).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createBackup, type BackupContext } from '../../src/shared/backup/backup.js';
import type { BackupRow } from '../../src/shared/catalog/catalog.js';
import { manifestName } from '../../src/shared/catalog/manifest.js';
import type { CompressionMode } from '../../src/shared/domain/backup-types.js';
import { restoreBackup } from '../../src/shared/restore/restore.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { checkCopy } from '../../src/shared/verify/check-copy.js';
import { decodedCopy, primarySource } from '../../src/shared/verify/readable-copy.js';
import { percentile, timed } from './stats.js';
import { Writer } from './writer.js';

export const MODES = ['none', 'zstd', 'gzip'] as const satisfies readonly CompressionMode[];
export type Mode = (typeof MODES)[number];

export interface ModeRun {
  backupMs: number;
  bytes: number;
  commitP99: number;
  /** Decoding the backup into a readable temp file and hashing it (none: hashing the file). */
  decodeMs: number;
  /** checkCopy in the mode a restore of a never-verified backup runs (full), keeping the copy. */
  verifyMs: number;
  restoreMs: number;
}

export interface Run {
  idleP99: number;
  modes: Record<Mode, ModeRun>;
}

export interface RunSetup {
  ctx: Omit<BackupContext, 'config'>;
  configs: Record<Mode, Config>;
  writerEveryMs: number;
  idleWindowMs: number;
}

const held = { assertHeld: async () => undefined };
let restores = 0;

async function removeBackup(setup: RunSetup, row: Pick<BackupRow, 'id' | 'file_path'>): Promise<void> {
  const manifest = path.join(path.dirname(row.file_path), manifestName(path.basename(row.file_path)));
  for (const f of [row.file_path, manifest]) await fs.promises.rm(f, { force: true });
  setup.ctx.catalog.deleteBackup(row.id);
}

/** Backs up in each mode with the writer committing; returns the rows and what each cost. */
async function backups(setup: RunSetup, run: Run): Promise<Map<Mode, BackupRow>> {
  const live = setup.configs.none.databasePath;
  const writer = await Writer.start(live, setup.writerEveryMs);
  const rows = new Map<Mode, BackupRow>();
  try {
    // Let the writer settle before its idle window: its first commits warm caches.
    await writer.idleWindow(500);
    run.idleP99 = percentile((await writer.idleWindow(setup.idleWindowMs)).latencies, 99);
    for (const mode of MODES) {
      writer.mark();
      const t = await timed(() => createBackup({ ...setup.ctx, config: setup.configs[mode] }, { type: 'manual', jobId: null }));
      const samples = await writer.take();
      if (samples.errors) throw new Error(`the writer failed ${samples.errors} commits: ${samples.lastError}`);
      rows.set(mode, t.value);
      run.modes[mode].backupMs = t.ms;
      run.modes[mode].bytes = t.value.file_size_bytes ?? 0;
      run.modes[mode].commitP99 = percentile(samples.latencies, 99);
    }
  } finally {
    await writer.stop();
  }
  return rows;
}

/** What restoring each backup costs, the live database left alone by anyone else. */
async function restoreCosts(setup: RunSetup, run: Run, rows: Map<Mode, BackupRow>): Promise<void> {
  const config = setup.configs.none;
  for (const mode of MODES) {
    const row = setup.ctx.catalog.getBackup(rows.get(mode)!.id)!;
    const source = primarySource(config, row);
    const m = run.modes[mode];
    m.decodeMs = (
      await timed(async () => {
        if (mode === 'none') return source.store.sha256(source.name);
        const copy = await decodedCopy(config, row, source, 'read');
        if (copy.sha256 !== row.checksum) throw new Error(`${mode}: decoded backup's checksum differs from the catalog's`);
        await copy.release();
      })
    ).ms;
    const verified = await timed(() => checkCopy(config, row, source, 'full', true, 'restore'));
    if (!verified.value.valid) throw new Error(`${mode}: the backup does not verify: ${verified.value.message}`);
    await verified.value.copy?.release();
    m.verifyMs = verified.ms;
    // The restore takes its safety backup with the uncompressed configuration for every mode:
    // what differs between the three is the backup it reads, nothing else.
    const restored = await timed(() =>
      restoreBackup({ ...setup.ctx, config }, { backupId: row.id, jobId: `bench-restore-${process.pid}-${restores++}`, lock: held }),
    );
    if (restored.value.status !== 'completed') throw new Error(`${mode}: restore ended ${restored.value.status}`);
    m.restoreMs = restored.ms;
    const safety = restored.value.safety_backup_id ? setup.ctx.catalog.getBackup(restored.value.safety_backup_id) : undefined;
    if (safety) await removeBackup(setup, safety);
  }
}

export async function compressionRun(setup: RunSetup): Promise<Run> {
  const blank = (): ModeRun => ({ backupMs: NaN, bytes: NaN, commitP99: NaN, decodeMs: NaN, verifyMs: NaN, restoreMs: NaN });
  const run: Run = { idleP99: NaN, modes: { none: blank(), zstd: blank(), gzip: blank() } };
  const rows = await backups(setup, run);
  try {
    await restoreCosts(setup, run, rows);
  } finally {
    for (const row of rows.values()) await removeBackup(setup, row);
  }
  return run;
}
