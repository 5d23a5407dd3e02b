/**
 * The WAL archive's packs in the bucket, read by the tests on their own (not through the service's
 * reader): which segment is where, so a test can check the bucket holds every segment byte-exact or
 * damage one segment inside its pack.
 */
import { createHash } from 'node:crypto';

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
