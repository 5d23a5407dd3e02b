/** Faults at random moments: a worker killed, every worker down, Redis restarted empty, the bucket hung or down. */
import type { Rng } from './prng.js';
import { WORKERS, type Service } from './service.js';

export type FaultKind = 'kill-worker' | 'outage' | 'redis-restart' | 's3-hang' | 's3-down';

export interface Fault {
  kind: FaultKind;
  scenario: number;
  start: number;
  /** When the harness undid it (the worker or server started again). */
  end: number;
  detail: string;
}

const WEIGHTS: Record<FaultKind, number> = { 'kill-worker': 4, outage: 2.5, 'redis-restart': 2, 's3-hang': 2, 's3-down': 1.5 };

/** Whether the archiver may stop for a while: restores to moments inside it are judged from its start. */
export const stopsArchiving = (kind: FaultKind) => kind === 'kill-worker' || kind === 'outage' || kind === 'redis-restart';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FaultInjector {
  readonly faults: Fault[] = [];
  /** True while every worker is down: the application's plan leans on the dangerous operations then. */
  outage = false;

  constructor(
    private readonly service: Service,
    private readonly rng: Rng,
  ) {}

  /** Faults until `deadline`, each undone before the next; resolves with everything running again. */
  async run(scenario: number, deadline: number): Promise<void> {
    for (;;) {
      const wait = this.rng.int(1_500, 5_000);
      const kind = this.rng.weighted(WEIGHTS);
      const length = this.rng.int(300, 3_500);
      const which = this.rng.int(0, WORKERS - 1);
      if (Date.now() + wait + length > deadline) return;
      await sleep(wait);
      const start = Date.now();
      let detail = '';
      switch (kind) {
        case 'kill-worker':
          await this.service.killWorker(which);
          detail = `worker ${which} SIGKILLed, started again after ${length} ms`;
          await sleep(length);
          await this.service.startWorker(which);
          break;
        case 'outage':
          await Promise.all(this.service.workers.map((_w, i) => this.service.killWorker(i)));
          this.outage = true;
          detail = `every worker SIGKILLed for ${length} ms`;
          await sleep(length);
          this.outage = false;
          for (let i = 0; i < WORKERS; i++) await this.service.startWorker(i);
          break;
        case 'redis-restart':
          await this.service.redis.kill();
          detail = `Redis killed, started again empty after ${length} ms`;
          await sleep(length);
          await this.service.redis.start();
          break;
        case 's3-hang':
          this.service.s3.pause();
          detail = `s3rver SIGSTOPped for ${length} ms`;
          await sleep(length);
          this.service.s3.resume();
          break;
        case 's3-down':
          await this.service.s3.stop();
          detail = `s3rver killed, started again after ${length} ms`;
          await sleep(length);
          await this.service.s3.start();
          break;
      }
      this.faults.push({ kind, scenario, start, end: Date.now(), detail });
    }
  }
}
