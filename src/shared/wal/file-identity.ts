import fs from 'node:fs/promises';
import { Gap } from './gap.js';

/**
 * Which files the archiver's connections hold (continuity rule 5 of docs/wal-archiving.md): at
 * every look, the database path's device and inode must be those the connections opened, and the
 * `-wal` path's those read before.
 */

/** Device and inode: which file a path names now (undefined when nothing does). */
export async function fileId(file: string): Promise<string | undefined> {
  return fs.stat(file).then(
    (st) => `${st.dev}:${st.ino}`,
    () => undefined,
  );
}

/** Device and inode of the database file the connections opened, and of the `-wal` file last read. */
export class HeldFiles {
  #walId: string | undefined;

  constructor(
    readonly databasePath: string,
    private readonly dbId: string | undefined,
  ) {}

  private get walPath(): string {
    return `${this.databasePath}-wal`;
  }

  /**
   * The database file must be the one the connections opened, and the `-wal` file the one read
   * last: while the archiver's connections are open no SQLite deletes it, so another one means the
   * database was replaced, or the file removed by hand with frames in it never read.
   */
  async check(): Promise<void> {
    const db = await fileId(this.databasePath);
    if (db !== this.dbId) throw new Gap(db ? 'the database file was replaced (another file at its path)' : 'the database file was deleted');
    const wal = await fileId(this.walPath);
    if (this.#walId && wal !== this.#walId) {
      throw new Gap(wal ? 'the -wal file was replaced by another file' : 'the -wal file was deleted');
    }
    if (wal) this.#walId = wal;
  }

  /** Takes the file at the `-wal` path now as the one read (none when it is gone). */
  async noteWal(): Promise<void> {
    this.#walId = await fileId(this.walPath);
  }
}
