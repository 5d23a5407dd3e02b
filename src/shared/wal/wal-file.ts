import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { frameSize, parseWalHeader, readAt, scanFrames, WAL_HEADER_SIZE, type WalHeader, type WalPosition } from './wal-format.js';

/**
 * Reading the live `-wal` file as the archiver looks at it: its header, and its committed frames
 * from a position (checked by `scanFrames`). Reading only: nothing here writes the file.
 */

/** At most this much of the WAL is read per sync; the rest follows in the next one. */
const READ_LIMIT = 64 * 1024 * 1024;

/** What one read of the WAL found. */
export interface Scanned {
  end: WalPosition;
  bytes: Buffer;
  commits: number;
  dbSizePages: number;
  fileSize: number;
  /** Whether the read reached the end of the file (else READ_LIMIT cut it: more follows). */
  complete: boolean;
}

/** The `-wal` file's header, or null when the file is missing, empty or holds no valid header. */
export async function readHeader(walPath: string): Promise<WalHeader | null> {
  const handle = await fs.open(walPath, 'r').catch(() => null);
  if (!handle) return null;
  try {
    // A header being rewritten at a restart can be read half old, half new (its checksum fails):
    // look again before taking the file for empty, which would end the generation.
    for (let attempt = 0; ; attempt++) {
      const bytes = await readAt(handle, 0, WAL_HEADER_SIZE);
      const header = parseWalHeader(bytes);
      if (header || bytes.length < WAL_HEADER_SIZE || attempt === 3) return header;
      await sleep(5);
    }
  } finally {
    await handle.close();
  }
}

/** Scans from `from` to the WAL's last commit; also returns the bytes read. */
export async function committedEnd(walPath: string, from: WalPosition): Promise<Scanned> {
  const handle = await fs.open(walPath, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const size = frameSize(from.pageSize);
    let limit = Math.floor(READ_LIMIT / size) * size;
    for (;;) {
      const want = Math.max(0, Math.min(fileSize - from.offset, limit));
      const bytes = want > 0 ? await readAt(handle, from.offset, want) : Buffer.alloc(0);
      const scan = scanFrames(bytes, from.offset, from);
      const complete = bytes.length >= fileSize - from.offset;
      // One transaction larger than the limit: read on until its commit (a segment never ends inside one).
      if (scan.commits === 0 && !complete && scan.pendingFrames * size === bytes.length) {
        limit *= 2;
        continue;
      }
      return { end: scan.end, bytes, commits: scan.commits, dbSizePages: scan.dbSizePages, fileSize, complete };
    }
  } finally {
    await handle.close();
  }
}

/** The size of a file, 0 when it is missing. */
export async function fileSize(file: string): Promise<number> {
  return fs.stat(file).then(
    (st) => st.size,
    () => 0,
  );
}
