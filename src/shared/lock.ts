import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Catalog } from './catalog.js';
import { AppError } from './errors.js';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class LockLostError extends AppError {
  constructor(message: string) {
    super('lock_lost', message, 409, false);
  }
}

/** What a destructive step needs from whatever lock its caller holds. */
export interface LockGuard {
  /** Throws unless the lock is still this holder's. */
  assertHeld(): Promise<void>;
}

/** A granted lock. Renewed in the background until released; `lost` once renewal fails. */
export class HeldLock implements LockGuard {
  private timer: NodeJS.Timeout;
  lost = false;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    readonly token: string,
    readonly fence: number,
    private readonly catalog: Catalog,
    ttl: number,
  ) {
    this.timer = setInterval(
      () => {
        redis.eval(RENEW, 1, key, token, ttl).then(
          (ok) => {
            if (!ok) this.lost = true;
          },
          () => undefined, // Redis away for a moment: the next tick tries again before the TTL runs out.
        );
      },
      Math.max(200, Math.floor(ttl / 3)),
    );
    this.timer.unref();
  }

  /**
   * Throws unless this holder still owns the lock: its token is still in Redis and no later grant
   * has taken a higher fencing value in the catalog. Called right before a destructive step.
   */
  async assertHeld(): Promise<void> {
    if (this.lost) throw new LockLostError('the database lock was lost (expired or taken over)');
    const current = await this.redis.get(this.key);
    if (current !== this.token) {
      this.lost = true;
      throw new LockLostError('the database lock is held by someone else now');
    }
    const fence = this.catalog.currentFence();
    if (fence !== this.fence) {
      this.lost = true;
      throw new LockLostError(`a newer lock grant exists (fence ${fence} > ${this.fence})`);
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.eval(RELEASE, 1, this.key, this.token).catch(() => undefined);
  }
}

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

  /** The lock, or null when another holder has it. */
  async tryAcquire(holder: string): Promise<HeldLock | null> {
    const token = `${holder}:${randomBytes(12).toString('hex')}`;
    const ok = await this.redis.set(this.key, token, 'PX', this.ttl, 'NX');
    if (ok !== 'OK') return null;
    const fence = this.catalog.nextFence();
    return new HeldLock(this.redis, this.key, token, fence, this.catalog, this.ttl);
  }

  /** Who holds the lock now, for health and error messages. */
  async holder(): Promise<string | null> {
    const token = await this.redis.get(this.key);
    return token ? token.slice(0, token.lastIndexOf(':')) : null;
  }
}
