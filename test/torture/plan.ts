/** What the application does next, drawn from the run's PRNG. */
import type { AppOp } from '../helpers/fake-app.js';
import type { Rng } from './prng.js';

export type Step = AppOp | { op: 'pause'; ms: number };

const NORMAL = {
  small: 60,
  medium: 6,
  big: 1.5,
  held: 4,
  autockpt: 3,
  ckpt: 5,
  reopen: 3,
  exit: 1.5,
  journal: 1,
  vacuum: 1,
  replace: 0.7,
  pagesize: 0.7,
  pause: 12,
};

/** While the archiver is down (an outage the harness made), what only then gets through: the dangerous moment. */
const OUTAGE = { ...NORMAL, ckpt: 10, exit: 6, journal: 6, pagesize: 4, replace: 3 };

export type Kind = keyof typeof NORMAL;

/**
 * The next step. The same number of draws whatever `outage` says, so that a seed gives the same
 * stream of draws however the run's timing falls.
 */
export function nextStep(rng: Rng, outage: boolean, bigTx: boolean): { kind: Kind; step: Step } {
  const r = rng.next();
  const kind = rng.weighted(outage ? OUTAGE : NORMAL, r);
  const tx = () => ({
    op: 'tx' as const,
    ins: rng.int(0, 10),
    upd: rng.int(0, 6),
    del: rng.int(0, 9),
    updAt: rng.next(),
    delAt: rng.next(),
    len: rng.int(20, 600),
  });
  const base = tx();
  const size = rng.int(1, 10) * 1024 * 1024;
  const hold = rng.int(300, 1_500);
  const medium = rng.int(100, 2_000);
  const pages = rng.pick([0, 0, 100, 1_000]);
  const mode = rng.pick(['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'] as const);
  const pageSize = rng.pick([1024, 2048, 4096, 8192, 16384]);
  const txs = rng.int(1, 5);
  const pause = rng.int(5, 150);
  switch (kind) {
    case 'small':
      return { kind, step: base };
    case 'medium':
      return { kind, step: { ...base, ins: medium, del: Math.floor(medium * 0.9), len: rng.int(50, 300) } };
    case 'big':
      return { kind, step: bigTx ? { ...base, big: size } : base };
    case 'held':
      return { kind, step: { ...base, holdMs: hold } };
    case 'autockpt':
      return { kind, step: { op: 'autockpt', pages } };
    case 'ckpt':
      return { kind, step: { op: 'ckpt', mode } };
    case 'reopen':
      return { kind, step: { op: 'reopen' } };
    case 'exit':
      return { kind, step: { op: 'exit' } };
    case 'journal':
      return { kind, step: { ...base, op: 'journal', txs } };
    case 'vacuum':
      return { kind, step: { op: 'vacuum' } };
    case 'replace':
      return { kind, step: { op: 'replace' } };
    case 'pagesize':
      return { kind, step: { op: 'pagesize', size: pageSize } };
    case 'pause':
      return { kind, step: { op: 'pause', ms: pause } };
  }
}
