import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import type { ArchiverDeps, ArchiverOptions } from './archiver-types.js';
import { removeGenerations } from './bucket-packs.js';

/**
 * How long the archive's history lasts: when a generation has run long enough for a fresh
 * snapshot to begin the next (rollover), and deleting the generations that ended more than
 * WAL_RETENTION ago (docs/wal-archiving.md, "Retention").
 */

/** A generation runs at most this long (or half of WAL_RETENTION) before a fresh snapshot begins the next. */
export const ROLLOVER_MAX_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 10 * 60_000;

export class GenerationRetention {
  #lastPrune = 0;

  constructor(
    private readonly deps: ArchiverDeps,
    private readonly opts: Pick<ArchiverOptions, 'retentionMs'>,
  ) {}

  rolloverDue(generation: WalGenerationRow): boolean {
    const retention = this.opts.retentionMs?.() ?? ROLLOVER_MAX_MS * 2;
    return Date.now() - Date.parse(generation.started_at) > Math.min(retention / 2, ROLLOVER_MAX_MS);
  }

  pruneDue(): boolean {
    return Date.now() - this.#lastPrune > PRUNE_EVERY_MS;
  }

  /** Deletes the generations (rows, then segment files) that ended more than WAL_RETENTION ago. */
  async prune(): Promise<void> {
    this.#lastPrune = Date.now();
    const retention = this.opts.retentionMs?.();
    if (!retention) return;
    const { catalog } = this.deps;
    const pruned = catalog.wal.pruneGenerations(new Date(Date.now() - retention).toISOString(), catalog.leasedBackupIds());
    if (!pruned.generations.length) return;
    await removeGenerations(this.deps.config, catalog, pruned);
    this.deps.log.info(
      { generations: pruned.generations, segments: pruned.files.length },
      'WAL archive: removed generations older than WAL_RETENTION',
    );
  }
}
