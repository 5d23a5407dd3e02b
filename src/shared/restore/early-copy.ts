import type { BackupContext } from '../backup/backup.js';
import type { CancelGate } from '../jobs/cancel.js';
import type { LockGuard } from '../locking/lock.js';
import { copyIn, type CopyOutcome } from './copy-in.js';
import type { RestoreRecord } from './restore-record.js';

/**
 * A restore's copy begun while its source's checks are still running, so that the restore costs
 * the longer of the two instead of their sum. It writes its pages in one open transaction, which
 * nobody sees, and commits only on `commit()`, once the source has passed; `drop()` rolls it back
 * (a database file the copy created goes with it). Begun only where there is no live database
 * (see `EarlyStart`): the copy holds the database's write lock from its first step until it
 * commits, and no application is then waiting on it.
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

/**
 * Decides when a restore's copy may begin before the source's checks end, and begins it: once the
 * source's bytes are final (`bytesFinal`) and the safety backup found no live database
 * (`noLiveDatabase`). With a live database the copy waits for the checks: begun beside them it
 * held the application's writes about a second longer on 1 GiB (sharing two cores with the safety
 * backup's hash and quick_check) for a restore no shorter (BENCHMARKS.md, issue 24).
 */
export class EarlyStart {
  #path?: string;
  #noLive = false;
  copy?: EarlyCopy;

  constructor(private readonly begin: (path: string) => EarlyCopy) {}

  readonly bytesFinal = (path: string): void => {
    this.#path = path;
    this.#consider();
  };

  readonly noLiveDatabase = (): void => {
    this.#noLive = true;
    this.#consider();
  };

  #consider(): void {
    if (!this.copy && this.#path && this.#noLive) this.copy = this.begin(this.#path);
  }
}
