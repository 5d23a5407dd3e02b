import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow } from '../catalog/catalog-schema.js';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';

/**
 * The archiver's contract with whoever runs it (the WAL job, tests): what it is given (its
 * dependencies and options) and what it reports (its progress).
 */

/** The archiver's state, for the board's progress and for `/health`. */
export interface ArchiverProgress {
  generation: number | null;
  /** Byte offset in the current `-wal` file up to which every commit is stored. */
  position: number | null;
  /** How long ago the last sync point was, at which every commit before it was stored. */
  lagMs: number;
  /** Bytes of committed frames read at the last look and not stored yet. */
  lagBytes: number;
  walBytes: number;
  segments: number;
  lastSyncAt: string | null;
  lastGap: { at: string; reason: string } | null;
}

/** The progress of an archiver that has not synced yet. */
export function noProgress(): ArchiverProgress {
  return {
    generation: null,
    position: null,
    lagMs: 0,
    lagBytes: 0,
    walBytes: 0,
    segments: 0,
    lastSyncAt: null,
    lastGap: null,
  };
}

export interface ArchiverDeps {
  config: Config;
  catalog: Catalog;
  log: Logger;
}

export interface ArchiverOptions {
  intervalMs: () => number;
  /** Aborted to stop (shutdown, handover, archiving turned off): the read mark goes at once. */
  signal: AbortSignal;
  /** Takes the snapshot a new generation replays onto (a backup through the usual pipeline, under the database lock). */
  takeSnapshot: (generation: WalGenerationRow, signal: AbortSignal) => Promise<{ backupId: number; completedAt: string }>;
  /** Called once per new generation that follows a gap: the `wal.gap` alert. */
  onGap?: (reason: string, generation: WalGenerationRow) => void;
  onProgress?: (progress: ArchiverProgress) => void | Promise<void>;
  /** Whether the service should stop archiving (turned off through the settings). */
  shouldStop?: () => boolean;
  /** How long the archive's history is kept (WAL_RETENTION): generations that ended longer ago go. */
  retentionMs?: () => number;
  /**
   * Takes or renews the right to archive (a lease); false while another archiver holds it. Checked
   * before every sync: an archiver that lost it lets go of the database and waits.
   */
  lease?: () => boolean;
}
