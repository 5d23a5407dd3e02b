import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.js';
import type { WalGenerationRow } from '../catalog/catalog-schema.js';

/** How long a generation waits for its snapshot backup before asking again. */
const SNAPSHOT_WAIT_MS = 10 * 60_000;

/** The backup job that takes a generation's snapshot. */
export const snapshotJobId = (generation: WalGenerationRow) => `wal-snapshot-${generation.id}`;

/**
 * A generation's snapshot is a backup through the usual pipeline (the database lock, checks,
 * retries, the mirror), asked for as a backup job. Any backup that *began* after the generation
 * did qualifies: its consistent copy is at or after the generation's first frame, so replaying
 * from there onto it is exact. Resolves with the first such backup to complete.
 */
export async function waitForSnapshot(
  catalog: Catalog,
  generation: WalGenerationRow,
  request: (jobId: string) => Promise<void>,
  signal?: AbortSignal,
): Promise<{ backupId: number; completedAt: string }> {
  await request(snapshotJobId(generation));
  const deadline = Date.now() + SNAPSHOT_WAIT_MS;
  while (Date.now() < deadline) {
    const found = catalog.firstBackupStartedAfter(generation.started_at);
    if (found?.completed_at) return { backupId: found.id, completedAt: found.completed_at };
    await sleep(250, undefined, { signal });
  }
  throw new Error(
    `no backup completed within ${SNAPSHOT_WAIT_MS / 60_000} minutes of asking for the snapshot of WAL generation ${generation.id}`,
  );
}
