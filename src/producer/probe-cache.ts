/** How long a probe's result is reused, and how long a request waits for a probe at most. */
export const PROBE_LIMITS = { ttlMs: 5_000, timeoutMs: 1_500 } as const;

export type Probed<T> = { answered: true; value: T } | { answered: false; limitMs: number };

export interface ProbeLimits<T> {
  ttlMs: number;
  timeoutMs: number;
  /** How long this result may be reused, asked at each read (default `ttlMs`): a probe that costs a request may keep a good answer longer. */
  keepMs?(value: T): number;
}

/**
 * A look at a disk (a probe file written, a statfs) made at most once per `ttlMs` however often it
 * is asked for, and never waited for longer than `timeoutMs`. A disk that stops answering (a hung
 * network mount) keeps its call stuck in one of libuv's four threads; starting another call on each
 * request would soon stall every file operation of the process. So while one call is in flight, no
 * other starts: later askers wait for what is left of its time limit, then hear "no answer".
 */
export class CachedProbe<T> {
  private last: { at: number; value: T } | undefined;
  private inFlight: { since: number; result: Promise<T> } | undefined;

  constructor(
    private readonly look: () => Promise<T>,
    private readonly limits: ProbeLimits<T> = PROBE_LIMITS,
  ) {}

  async read(): Promise<Probed<T>> {
    const now = Date.now();
    const last = this.last;
    if (last && now - last.at < (this.limits.keepMs?.(last.value) ?? this.limits.ttlMs)) return { answered: true, value: last.value };
    this.inFlight ??= this.start(now);
    const { since, result } = this.inFlight;
    const left = since + this.limits.timeoutMs - now;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, left));
    });
    try {
      const settled = await Promise.race([result.then((value) => ({ value })), late]);
      if (settled) return { answered: true, value: settled.value };
      return { answered: false, limitMs: this.limits.timeoutMs };
    } finally {
      clearTimeout(timer);
    }
  }

  private start(now: number): { since: number; result: Promise<T> } {
    const result = this.look().then((value) => {
      this.last = { at: Date.now(), value };
      return value;
    });
    // The caller's race handles a rejection; this one only keeps it from being "unhandled".
    result
      .catch(() => undefined)
      .finally(() => {
        this.inFlight = undefined;
      });
    return { since: now, result };
  }
}

const shared = new Map<string, CachedProbe<unknown>>();

/**
 * The probe for `key` (which names everything it looks at), shared by every caller in the process:
 * `/health`, `/metrics` and the watchdog ask about the same disks.
 */
export function cachedProbe<T>(key: string, look: () => Promise<T>): CachedProbe<T> {
  let probe = shared.get(key) as CachedProbe<T> | undefined;
  if (!probe) {
    probe = new CachedProbe(look);
    shared.set(key, probe);
  }
  return probe;
}
