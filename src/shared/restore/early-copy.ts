import type { BackupContext } from '../backup/backup.js';
import type { CancelGate } from '../jobs/cancel.js';
import type { LockGuard } from '../locking/lock.js';
import { copyIn, type CopyOutcome } from './copy-in.js';
import type { RestoreRecord } from './restore-record.js';

/**
 * A copy into the live database begun while its source's checks and the safety backup are still
 * running, so that the restore costs the longer of them instead of their sum. It writes its pages
 * in one open transaction, which the application never sees, and commits only on `commit()`, once
 * the source has passed and the safety backup is published; `drop()` rolls it back, leaving the
 * live database as it was. The application's writes wait for it from its first step, as they wait
 * for any copy into the live database: a restore begins one only where the checks are shorter than
 * the copy (a checksum of bytes that passed integrity_check before), so they wait no longer.
 */
export class EarlyCopy {
  readonly #go: () => void;
  readonly #abandon: (reason: Error) => void;
  readonly #outcome: Promise<CopyOutcome>;

  constructor(
    ctx: BackupContext,
    lock: LockGuard,
    record: RestoreRecord,
    readonly path: string,
    gate: CancelGate,
    cancel: AbortSignal | undefined,
  ) {
    let go!: () => void;
    let abandon!: (reason: Error) => void;
    const hold = new Promise<void>((resolve, reject) => {
      go = resolve;
      abandon = reject;
    });
    hold.catch(() => undefined);
    this.#go = go;
    this.#abandon = abandon;
    this.#outcome = copyIn(ctx, lock, record, path, gate, cancel, hold);
    this.#outcome.catch(() => undefined);
  }

  /**
   * Lets it commit and answers how it ended: as `copyIn` does, or `untouched` when it had stopped
   * before committing (busy past its deadline, a failure while writing), which leaves the live
   * database as it was for the caller to copy the usual way.
   */
  commit(): Promise<CopyOutcome> {
    this.#go();
    return this.#outcome;
  }

  /** Rolls it back and waits until its thread has let go of the live database. */
  async drop(): Promise<void> {
    this.#abandon(new Error('the restore did not go on with this copy'));
    await this.#outcome.catch(() => undefined);
  }
}

/** How a source's remaining checks compare with copying its bytes: a checksum is shorter, integrity_check is not. */
export type ChecksLeft = 'shorter' | 'longer';

/**
 * Decides when a restore's copy may begin before the checks end, and begins it: once the source's
 * bytes are final (`bytesFinal`) and the safety backup no longer reads the live database
 * (`liveReleased`: its snapshot is copied, or there is no live database). Where the checks left
 * are longer than the copy, only when there is no live database: no application is then waiting on
 * its write lock, which the copy holds from its first step until it commits.
 */
export class EarlyStart {
  #bytes?: { path: string; checks: ChecksLeft };
  #live?: 'absent' | 'copied';
  copy?: EarlyCopy;

  constructor(private readonly begin: (path: string) => EarlyCopy) {}

  readonly bytesFinal = (path: string, checks: ChecksLeft): void => {
    this.#bytes = { path, checks };
    this.#consider();
  };

  readonly liveReleased = (live: 'absent' | 'copied'): void => {
    this.#live = live;
    this.#consider();
  };

  #consider(): void {
    if (this.copy || !this.#bytes || !this.#live) return;
    if (this.#bytes.checks === 'longer' && this.#live !== 'absent') return;
    this.copy = this.begin(this.#bytes.path);
  }
}
