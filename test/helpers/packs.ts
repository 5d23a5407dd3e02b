/**
 * The WAL archive's packs in the bucket, read by the tests on their own (not through the service's
 * reader): which segment is where, so a test can check the bucket holds every segment byte-exact or
 * damage one segment inside its pack; which packs a run's requests named; segment files put back.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A pack starts with these bytes, a 4-byte big-endian header length, the JSON header, then the segments' bytes. */
const MAGIC = Buffer.from('WSB-WAL-PACK-1\n');

export interface PackedSegment {
  pack: string;
  seq: number;
  fileName: string;
  /** Where its bytes start in the pack. */
  offset: number;
  size: number;
  /** SHA-256 of its bytes as the pack holds them. */
  sha256: string;
}

export function segmentsInPack(name: string, bytes: Buffer): PackedSegment[] {
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${name} is not a pack`);
  const length = bytes.readUInt32BE(MAGIC.length);
  const start = MAGIC.length + 4;
  const header = JSON.parse(bytes.subarray(start, start + length).toString('utf8')) as {
    segments: { seq: number; fileName: string; sizeBytes: number }[];
  };
  let offset = start + length;
  return header.segments.map((s) => {
    const at = offset;
    offset += s.sizeBytes;
    return {
      pack: name,
      seq: s.seq,
      fileName: s.fileName,
      offset: at,
      size: s.sizeBytes,
      sha256: createHash('sha256')
        .update(bytes.subarray(at, at + s.sizeBytes))
        .digest('hex'),
    };
  });
}

/** Every segment in the packs among `objects` (name → bytes), by file name. */
export function packedSegments(objects: Map<string, Buffer>): Map<string, PackedSegment> {
  const out = new Map<string, PackedSegment>();
  for (const [name, bytes] of objects) {
    if (!/^pack-/.test(name.split('/').pop()!)) continue;
    for (const s of segmentsInPack(name, bytes)) out.set(s.fileName, s);
  }
  return out;
}

/** Recorded request lines (`METHOD /bucket/key?query`) as `METHOD <pack name>`, or `METHOD other` for any other object. */
export function packRequests(lines: string[]): string[] {
  return lines.map((l) => {
    const [method, url] = l.split(' ');
    return `${method} ${/\/(pack-\d{8}-\d{10}-\d{10})(\?|$)/.exec(url!)?.[1] ?? 'other'}`;
  });
}

/**
 * Copies the files of `aside` into `dir` for `run`, less `gone`, with `damaged` altered (a byte
 * flipped); then removes them from `dir` again.
 */
export async function withFilesBack<T>(
  aside: string,
  dir: string,
  run: () => Promise<T>,
  { gone, damaged }: { gone?: string; damaged?: string } = {},
): Promise<T> {
  const names = fs.readdirSync(aside).filter((n) => n !== gone);
  for (const name of names) fs.copyFileSync(path.join(aside, name), path.join(dir, name));
  if (damaged) {
    const bytes = fs.readFileSync(path.join(dir, damaged));
    bytes[bytes.length >> 1]! ^= 0xff;
    fs.writeFileSync(path.join(dir, damaged), bytes);
  }
  try {
    return await run();
  } finally {
    for (const name of names) fs.rmSync(path.join(dir, name), { force: true });
  }
}
