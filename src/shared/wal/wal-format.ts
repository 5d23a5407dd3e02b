import type { FileHandle } from 'node:fs/promises';

/**
 * SQLite's write-ahead log, read from the `-wal` file (sqlite.org/fileformat2.html §4): a 32-byte
 * header, then frames of a 24-byte header and one page. A frame counts only when its salts are
 * the header's and its checksum continues the running checksum; a transaction counts only up to
 * its commit frame (non-zero "database size after commit"). Everything here is pure reading:
 * nothing writes the `-wal` file or parses `-shm`.
 */

export const WAL_HEADER_SIZE = 32;
export const FRAME_HEADER_SIZE = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;

export interface WalHeader {
  /** Checksum words are big-endian (magic …83) or little-endian (…82). */
  bigEndian: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** The running checksum after the header: where the first frame's checksum starts. */
  checksum: Checksum;
}

/** The running checksum: two 32-bit words. */
export type Checksum = readonly [number, number];

/**
 * SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `start`: the input is
 * read as pairs of 32-bit words, `s0 += x[i] + s1; s1 += x[i+1] + s0`, all modulo 2^32.
 */
export function walChecksum(data: Buffer, bigEndian: boolean, start: Checksum): Checksum {
  let s0 = start[0];
  let s1 = start[1];
  const read = bigEndian ? data.readUInt32BE.bind(data) : data.readUInt32LE.bind(data);
  for (let i = 0; i + 8 <= data.length; i += 8) {
    s0 = (s0 + read(i) + s1) >>> 0;
    s1 = (s1 + read(i + 4) + s0) >>> 0;
  }
  return [s0, s1];
}

/** The header, or null when the bytes are not a valid WAL header (short, wrong magic, bad checksum). */
export function parseWalHeader(bytes: Buffer): WalHeader | null {
  if (bytes.length < WAL_HEADER_SIZE) return null;
  const magic = bytes.readUInt32BE(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) return null;
  const bigEndian = magic === MAGIC_BE;
  const pageSize = bytes.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65_536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const checksum = walChecksum(bytes.subarray(0, 24), bigEndian, [0, 0]);
  if (checksum[0] !== bytes.readUInt32BE(24) || checksum[1] !== bytes.readUInt32BE(28)) return null;
  return {
    bigEndian,
    pageSize,
    checkpointSeq: bytes.readUInt32BE(12),
    salt1: bytes.readUInt32BE(16),
    salt2: bytes.readUInt32BE(20),
    checksum,
  };
}

export interface FrameInfo {
  pageNumber: number;
  /** Database size in pages after the commit this frame ends; 0 for a frame inside a transaction. */
  commitSize: number;
}

/** Where a scan of the WAL begins: an offset on a frame boundary, with the checksum there. */
export interface WalPosition {
  salt1: number;
  salt2: number;
  pageSize: number;
  bigEndian: boolean;
  /** Byte offset of the next frame to read (32 for the first frame). */
  offset: number;
  checksum: Checksum;
}

export interface ScanResult {
  /** Where the committed frames end: the position after the last commit frame found (or `from` when none). */
  end: WalPosition;
  /** Commit frames passed, with their database size. */
  commits: number;
  /** Database size in pages after the last commit found (0 when none). */
  dbSizePages: number;
  /** Frames read and checked past `end` that belong to a transaction not yet committed. */
  pendingFrames: number;
}

export const frameSize = (pageSize: number) => FRAME_HEADER_SIZE + pageSize;

/**
 * Salt-1 of the WAL after one restart of a WAL with `salt1`: SQLite adds one at every restart
 * (walRestartHdr), so a header with any other salt-1 is another file or more than one restart.
 */
export const restartSalt = (salt1: number): number => (salt1 + 1) >>> 0;

export const startOf = (header: WalHeader): WalPosition => ({
  salt1: header.salt1,
  salt2: header.salt2,
  pageSize: header.pageSize,
  bigEndian: header.bigEndian,
  offset: WAL_HEADER_SIZE,
  checksum: header.checksum,
});

/**
 * Validates frames from `from` onward in bytes already read (`bytes` starts at file offset
 * `bytesOffset`) and returns how far the committed ones reach. Stops at the first frame that is
 * short, carries other salts, or breaks the checksum chain: what follows is not this WAL's.
 */
export function scanFrames(bytes: Buffer, bytesOffset: number, from: WalPosition): ScanResult {
  const size = frameSize(from.pageSize);
  let checksum = from.checksum;
  let end = from;
  let commits = 0;
  let dbSizePages = 0;
  let pending = 0;
  for (let at = from.offset - bytesOffset; at + size <= bytes.length; at += size) {
    const header = bytes.subarray(at, at + FRAME_HEADER_SIZE);
    if (header.readUInt32BE(8) !== from.salt1 || header.readUInt32BE(12) !== from.salt2) break;
    checksum = walChecksum(header.subarray(0, 8), from.bigEndian, checksum);
    checksum = walChecksum(bytes.subarray(at + FRAME_HEADER_SIZE, at + size), from.bigEndian, checksum);
    if (checksum[0] !== header.readUInt32BE(16) || checksum[1] !== header.readUInt32BE(20)) break;
    pending++;
    const commitSize = header.readUInt32BE(4);
    if (commitSize > 0) {
      commits++;
      dbSizePages = commitSize;
      pending = 0;
      end = { ...from, offset: bytesOffset + at + size, checksum };
    }
  }
  return { end, commits, dbSizePages, pendingFrames: pending };
}

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export async function readAt(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** Each frame in a run of whole frames: its page number, commit size and page bytes. */
export function* framesOf(bytes: Buffer, pageSize: number): Generator<FrameInfo & { page: Buffer }> {
  const size = frameSize(pageSize);
  for (let at = 0; at + size <= bytes.length; at += size) {
    yield {
      pageNumber: bytes.readUInt32BE(at),
      commitSize: bytes.readUInt32BE(at + 4),
      page: bytes.subarray(at + FRAME_HEADER_SIZE, at + size),
    };
  }
}
