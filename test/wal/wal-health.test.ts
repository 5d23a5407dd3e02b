/**
 * `/health`'s WAL section from the catalog alone: a generation begun after a gap whose snapshot
 * never came leaves the window ending before it, and says so once the grace period is over.
 */
import { afterAll, expect, it } from 'vitest';
import { recordArchiverState } from '../../src/shared/wal/archiver-state.js';
import { walStatus } from '../../src/shared/wal/wal-health.js';
import { sandbox } from '../helpers/env.js';
import { openCatalog } from '../helpers/producer.js';

const box = sandbox('wal-health', { WAL_ARCHIVE_ENABLED: 'true', WAL_ARCHIVE_INTERVAL: '1000' });
const catalog = openCatalog(box.config);
afterAll(async () => {
  catalog.close();
  await box.cleanup();
});

it('is a problem when the open generation has had no snapshot for five minutes, and not before', () => {
  const generation = catalog.wal.beginGeneration('the -wal file was deleted', 4096, null);
  const begun = Date.parse(generation.started_at);
  const report = (at: number) =>
    recordArchiverState(catalog, {
      generation: generation.id,
      position: null,
      lagMs: 100,
      lagBytes: 0,
      walBytes: 0,
      segments: 0,
      lastSyncAt: new Date(at).toISOString(),
      lastGap: null,
      workerId: 'w',
      at: new Date(at).toISOString(),
      notWalMode: null,
    });

  report(begun + 60_000);
  expect(walStatus(box.config, catalog, begun + 60_000).problem).toBeNull();

  report(begun + 6 * 60_000);
  expect(walStatus(box.config, catalog, begun + 6 * 60_000).problem).toBe(
    `the WAL archive's generation ${generation.id} (begun ${generation.started_at}: the -wal file was deleted) has no snapshot yet: moments since then cannot be restored`,
  );

  catalog.wal.setSnapshot(generation.id, 1, new Date(begun + 6 * 60_000).toISOString());
  expect(walStatus(box.config, catalog, begun + 6 * 60_000).problem).toBeNull();
});
