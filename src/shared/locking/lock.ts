import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Catalog } from '../catalog/catalog.js';
import { LockLostError } from '../domain/errors.js';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Re-exported for `restore/`, which imports it from here; everything else imports it from `domain/errors.ts`. */

/** What a destructive step needs from whatever lock its caller holds. */
export interface LockGuard {
  /** Throws unless the lock is still this holder's. */
  assertHeld(): Promise<void>;
  /** This grant's fencing value, for a check made away from this object (the SQLite thread). */
  readonly fence?: number;
  /** Aborted once the lock is known to be lost, so that work in progress under it can stop. */
  readonly signal?: AbortSignal;
}

/** Throws when a later grant has taken a higher fencing value than `fence` (unset: nothing to check). */
export function assertFence(catalog: Catalog, fence: number | undefined): void {
  if (fence === undefined) return;
  const current = catalog.currentFence();
  if (current !== fence) throw new LockLostError(`a newer lock grant exists (fence ${current} > ${fence})`);
}

/** A granted lock. Renewed in the background until released; `lost` once renewal fails. */
export class HeldLock implements LockGuard {
  private timer: NodeJS.Timeout;
  private readonly lostController = new AbortController();
  readonly signal = this.lostController.signal;
  private fenceValue: number | undefined;
  /** When the last renewal that Redis confirmed was sent (the grant counts as one). */
  private renewedAt = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly token: string,
    private readonly catalog: Catalog,
    ttl: number,
  ) {
    this.timer = setInterval(
      () => {
        // Unconfirmed for longer than the TTL (this process was paused, or Redis was out of
        // reach): the key may have expired and been granted to someone else meanwhile.
        if (Date.now() - this.renewedAt > ttl) this.markLost(`the database lock was not renewed within its TTL (${ttl} ms)`);
        const sentAt = Date.now();
        redis.eval(RENEW, 1, key, token, ttl).then(
          (ok) => {
            if (!ok) this.markLost('the database lock expired or was taken over');
            else this.renewedAt = sentAt;
          },
          () => undefined, // Redis away for a moment: the next tick tries again before the TTL runs out.
        );
      },
      Math.max(200, Math.floor(ttl / 3)),
    );
    this.timer.unref();
  }

  get lost(): boolean {
    return this.signal.aborted;
  }

  get fence(): number | undefined {
    return this.fenceValue;
  }

  /**
   * Takes this grant's fencing value. Call it once every lock the holder needs is held: a value
   * taken before a second lock is granted would fence off whoever holds that lock (a CLI run
   * holding only the local lock) without this holder ever owning the database.
   */
  takeFence(): number {
    this.fenceValue = this.catalog.nextFence();
    return this.fenceValue;
  }

  private markLost(reason: string): void {
    if (!this.signal.aborted) this.lostController.abort(new LockLostError(reason));
  }

  /**
   * Throws unless this holder still owns the lock: its token is still in Redis and no later grant
   * has taken a higher fencing value in the catalog. Called right before a destructive step.
   */
  async assertHeld(): Promise<void> {
    if (this.lost) throw new LockLostError('the database lock was lost (expired or taken over)');
    const current = await this.redis.get(this.key);
    if (current !== this.token) {
      this.markLost('the database lock is held by someone else now');
      throw new LockLostError('the database lock is held by someone else now');
    }
    try {
      assertFence(this.catalog, this.fenceValue);
    } catch (err) {
      this.markLost((err as Error).message);
      throw err;
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.eval(RELEASE, 1, this.key, this.token).catch(() => undefined);
  }
}

/** A granted lock that has taken its fencing value. */
export type FencedLock = HeldLock & { readonly fence: number };

/**
 * One backup or restore of the database at a time, across every process on every host: a Redis
 * key with a random token and a TTL. A holder that dies stops renewing and the key expires.
 */
export class DatabaseLock {
  readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly catalog: Catalog,
    private readonly ttl: number,
  ) {
    this.key = `${prefix}:lock:database`;
  }

  /**
   * The lock, or null when another holder has it. It takes its fencing value at once unless
   * `fence: 'later'`: a holder that goes on to take the local file lock takes it with
   * `takeFence()` once it holds both.
   */
  async tryAcquire(holder: string, opts?: { fence?: 'now' }): Promise<FencedLock | null>;
  async tryAcquire(holder: string, opts: { fence: 'later' }): Promise<HeldLock | null>;
  async tryAcquire(holder: string, { fence = 'now' }: { fence?: 'now' | 'later' } = {}): Promise<HeldLock | null> {
    const token = `${holder}:${randomBytes(12).toString('hex')}`;
    const ok = await this.redis.set(this.key, token, 'PX', this.ttl, 'NX');
    if (ok !== 'OK') return null;
    const held = new HeldLock(this.redis, this.key, token, this.catalog, this.ttl);
    if (fence === 'now') held.takeFence();
    return held;
  }

  /** Who holds the lock now, for health and error messages. */
  async holder(): Promise<string | null> {
    const token = await this.redis.get(this.key);
    return token ? token.slice(0, token.lastIndexOf(':')) : null;
  }
}
