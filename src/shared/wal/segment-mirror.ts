import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../catalog/catalog.js';
import { messageOf } from '../domain/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { Config } from '../runtime/config.js';
import { backgroundCompaction } from './bucket-compact.js';
import { sendPending } from './bucket-packs.js';
import { nextSegmentStored, segmentsStored } from './segment-store.js';

/** After failed passes the wait doubles from one interval up to this. */
const MAX_RETRY_MS = 30_000;

export interface SegmentMirrorDeps {
  config: Config;
  catalog: Catalog;
  log: Logger;
}

export interface SegmentMirrorOptions {
  intervalMs: () => number;
  /** Aborted to stop: the copy in flight is aborted with it. */
  signal: AbortSignal;
  /** Whether this process may copy now: it holds the archiver's lease, so no other copies the same segments. */
  mayCopy?: () => boolean;
}

/**
 * Sends the bucket what the catalog says it lacks (`sendPending`: generation descriptions, then
 * one pack of new segments), beside the archiver's loop and never inside it: a bucket that hangs,
 * refuses or is down never holds up a sync (each waits for BACKUP_MIRROR_TIMEOUT, a few times
 * over), nor the archiver's lease. One loop, so a segment is never being sent twice at once.
 * Passes are at least an interval (WAL_MIRROR_INTERVAL) apart: a busy database costs one PUT per
 * interval. A segment stored after that wakes the loop at once (in this process), so what reaches
 * the bucket lags the local archive by little more than the upload. After a failure it waits (one
 * interval, doubling up to 30 s) and tries again, so it catches up on its own once the bucket is
 * back. After a good pass it may start a compaction of the bucket's packs (`backgroundCompaction`:
 * every few minutes, beside the loop). Resolves once the signal is aborted.
 */
export async function runSegmentMirror({ config, catalog, log }: SegmentMirrorDeps, opts: SegmentMirrorOptions): Promise<void> {
  const { signal } = opts;
  let failures = 0;
  const missing = new Set<string>();
  const compaction = backgroundCompaction({ config, catalog, log });
  while (!signal.aborted) {
    const started = Date.now();
    const storedBefore = segmentsStored();
    let wait = opts.intervalMs();
    if (opts.mayCopy?.() ?? true) {
      const pass = await sendPending(config, catalog, signal).catch((err: unknown) => ({
        copied: 0,
        error: messageOf(err),
        missing: [] as string[],
        more: true,
      }));
      if (signal.aborted) break;
      for (const name of pass.missing.filter((n) => !missing.has(n))) {
        missing.add(name);
        log.error(
          { segment: name },
          'WAL archive: a recorded segment has no file in BACKUP_DIR/wal, or a damaged one; it cannot be sent to the mirror',
        );
      }
      if (pass.error !== undefined) {
        // Once per outage: the catalog says what is still missing.
        if (failures === 0)
          log.warn({ reason: pass.error }, 'WAL archive: copying segments to the mirror failed; trying again until it answers');
        failures++;
        wait = Math.min(MAX_RETRY_MS, wait * 2 ** Math.min(failures - 1, 16));
      } else {
        if (failures > 0) log.info({ copied: pass.copied }, 'WAL archive: the mirror answers again');
        failures = 0;
        compaction.poke(signal);
        if (pass.more) continue;
        // The next pass once an interval has passed and a segment was stored (or another interval, for the descriptions).
        await sleep(Math.max(0, started + wait - Date.now()), undefined, { signal }).catch(() => undefined);
        if (segmentsStored() === storedBefore) await nextSegmentStored(wait, signal);
        continue;
      }
    }
    await sleep(wait, undefined, { signal }).catch(() => undefined);
  }
  await compaction.idle();
}
