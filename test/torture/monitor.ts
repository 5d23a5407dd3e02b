/**
 * What the service said while the harness ran: `/health` (its problems, the WAL lag, the last gap)
 * and the archiver's own reports in the catalog, sampled a few times a second.
 */
import { archiverState } from '../../src/shared/wal/archiver-state.js';
import type { Service } from './service.js';

export interface HealthSample {
  t: number;
  /** The problems `/health` named about the WAL archive (empty when none, or when it did not answer). */
  walProblems: string[];
  lagSeconds: number | null;
  lastGap: { at: string; reason: string } | null;
  answered: boolean;
}

export interface ArchiverSample {
  t: number;
  at: number;
  lagMs: number;
  generation: number | null;
}

export class Monitor {
  readonly health: HealthSample[] = [];
  readonly archiver: ArchiverSample[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly service: Service) {}

  start(everyMs = 300): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.sample();
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  async sample(): Promise<void> {
    const t = Date.now();
    try {
      const state = archiverState(this.service.catalog);
      if (state) this.archiver.push({ t, at: Date.parse(state.at), lagMs: state.lagMs, generation: state.generation });
    } catch {
      // The catalog busy for a moment: the next sample reads it.
    }
    try {
      const { body } = await this.service.api('GET', '/health', undefined, 2_000);
      const b = body as { problems?: string[]; wal?: { lagSeconds: number | null; lastGap: { at: string; reason: string } | null } };
      this.health.push({
        t,
        walProblems: (b.problems ?? []).filter((p) => /WAL|archiv/i.test(p)),
        lagSeconds: b.wal?.lagSeconds ?? null,
        lastGap: b.wal?.lastGap ?? null,
        answered: true,
      });
    } catch {
      this.health.push({ t, walProblems: [], lagSeconds: null, lastGap: null, answered: false });
    }
  }

  /** When the archiver first reported a sync after `after` (ms), or undefined. */
  resumedAfter(after: number): number | undefined {
    return this.archiver.find((s) => s.at > after)?.at;
  }
}
