/**
 * A restore shorter than the archive interval: the archiver never sees it in progress, yet the
 * database was replaced. The generation must end there and a new one begin ("a restore ran"),
 * as for a restore it saw; before, it carried on across the restore.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { useWalStack } from '../helpers/wal-stack.js';
import { archivingUnderWay } from '../helpers/wal-writer.js';

/** Long enough that a restore of the 1 MB test database begins and ends between two looks. */
const INTERVAL = 4_000;

const stack = useWalStack('wal-short-restore', INTERVAL);

describe('a restore shorter than the archive interval', () => {
  it('ends the generation and begins a new one that says why', async () => {
    const generation = await archivingUnderWay(stack.catalog, { segments: 0, timeoutMs: 60_000 });
    const res = await request(stack.producer.server).post(`/api/backups/${generation.snapshot_backup_id}/restore`).set(auth);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const restore = stack.catalog.getRestore(res.body.restore.id)!;
    const took = Date.parse(restore.completed_at!) - Date.parse(restore.started_at);
    expect(took, 'the restore took less than one interval').toBeLessThan(INTERVAL);

    const next = await waitUntil(
      'the generation after the restore',
      () => stack.catalog.wal.generations().find((g) => g.id > generation.id),
      30_000,
    );
    expect(next.reason).toBe('a restore ran');
    expect(stack.catalog.wal.generation(generation.id)).toMatchObject({ end_reason: 'a restore ran' });
    expect(stack.catalog.wal.generation(generation.id)!.ended_at).not.toBeNull();
  }, 120_000);
});
