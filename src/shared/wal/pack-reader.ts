import type { Readable } from 'node:stream';
import type { Catalog } from '../catalog/catalog.js';
import type { WalSegmentRow } from '../catalog/catalog-schema.js';
import { keyringOf } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import type { Config } from '../runtime/config.js';
import type { BackupStorage } from '../storage/storage.js';
import { MAX_HEADER_BYTES, PACK_MAGIC, readPackHeader, type PackHeader } from './bucket-format.js';
import { decodeSegment, localSegmentBytes, segmentStoresOf, type SegmentRead } from './segment-store.js';

/** Reads exact byte counts from a stream, holding no more than the chunk in hand. */
class ByteReader {
  #chunks: AsyncIterator<Buffer>;
  #held: Buffer = Buffer.alloc(0);
  /** Bytes taken so far. */
  offset = 0;

  constructor(private readonly stream: Readable) {
    this.#chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async take(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let wanted = n;
    while (wanted > 0) {
      if (!this.#held.length) {
        const next = await this.#chunks.next();
        if (next.done) throw new Error(`ends ${wanted} bytes short, at byte ${this.offset + n - wanted}`);
        this.#held = next.value;
      }
      const piece = this.#held.subarray(0, wanted);
      this.#held = this.#held.subarray(piece.length);
      parts.push(piece);
      wanted -= piece.length;
    }
    this.offset += n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Passes over `n` bytes without keeping them. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const step = Math.min(left, 1 << 20);
      await this.take(step);
      left -= step;
    }
  }

  close(): void {
    this.stream.destroy();
  }
}

/** A pack opened for reading: its header checked, its segments to be read in order. */
export interface OpenPack {
  name: string;
  header: PackHeader;
  reader: ByteReader;
  /** Index in `header.segments` of the next segment's bytes. */
  next: number;
}

type Expect = { generation: number; firstSeq: number; lastSeq: number };

const LENGTH_AT = PACK_MAGIC.length;
const HEADER_AT = LENGTH_AT + 4;

function checkMagic(magic: Buffer): void {
  if (!magic.equals(PACK_MAGIC)) throw new Error('not a WAL pack (its first bytes are not the pack format)');
}

function checkLength(length: number): void {
  if (length > MAX_HEADER_BYTES) throw new Error(`its header claims ${length} bytes, more than a pack's header can be`);
}

/** The header parsed and authenticated (with a key configured), its segments consecutive and the ones its name claims. */
function checkedHeader(json: Buffer, config: Config, expect: Expect | undefined): PackHeader {
  const read = readPackHeader(json.toString('utf8'), keyringOf(config));
  if (!read.ok) throw new Error(read.reason);
  const header = read.value;
  const seqs = header.segments.map((s) => s.seq);
  if (seqs.some((seq, i) => i > 0 && seq !== seqs[i - 1]! + 1)) throw new Error('its segments are not consecutive');
  if (expect && (header.generation !== expect.generation || seqs[0] !== expect.firstSeq || seqs.at(-1) !== expect.lastSeq)) {
    throw new Error(
      `its header holds segments ${seqs[0]}–${seqs.at(-1)} of generation ${header.generation}, not what its name says (it was renamed or forged)`,
    );
  }
  return header;
}

/**
 * Opens a pack in the bucket and reads its header: the magic bytes, a length within bounds, a
 * header that parses, authenticates (with a key configured) and names the generation and the
 * sequence numbers the object's name claims. Throws with the reason.
 */
export async function openPack(store: BackupStorage, name: string, config: Config, expect?: Expect): Promise<OpenPack> {
  const reader = new ByteReader(await store.read(name));
  try {
    checkMagic(await reader.take(PACK_MAGIC.length));
    const length = (await reader.take(4)).readUInt32BE(0);
    checkLength(length);
    const header = checkedHeader(await reader.take(length), config, expect);
    return { name, header, reader, next: 0 };
  } catch (err) {
    reader.close();
    throw err;
  }
}

/** Bytes of a pack asked for first when only its header is wanted: a few hundred bytes a segment. */
export const PACK_HEAD_BYTES = 64 * 1024;

/**
 * A pack's header alone, with the checks of `openPack`, in one ranged GET of its first
 * `firstBytes` (and one more for the rest when the header is longer): the segments' bytes are not
 * downloaded. A target without ranged reads opens the pack and reads no further than its header.
 */
export async function readPackHead(
  store: BackupStorage,
  name: string,
  config: Config,
  expect?: Expect,
  firstBytes = PACK_HEAD_BYTES,
): Promise<PackHeader> {
  if (!store.readRange) {
    const open = await openPack(store, name, config, expect);
    open.reader.close();
    return open.header;
  }
  const first = await store.readRange(name, 0, Math.max(firstBytes, HEADER_AT) - 1);
  const short = (at: number, wanted: number) => new Error(`ends ${wanted} bytes short, at byte ${at}`);
  if (first.bytes.length < LENGTH_AT) throw short(first.bytes.length, LENGTH_AT - first.bytes.length);
  checkMagic(first.bytes.subarray(0, LENGTH_AT));
  if (first.bytes.length < HEADER_AT) throw short(first.bytes.length, HEADER_AT - first.bytes.length);
  const length = first.bytes.readUInt32BE(LENGTH_AT);
  checkLength(length);
  let json = first.bytes.subarray(HEADER_AT, HEADER_AT + length);
  if (json.length < length && first.size > first.bytes.length) {
    const rest = await store.readRange(name, first.bytes.length, HEADER_AT + length - 1);
    json = Buffer.concat([json, rest.bytes]);
  }
  if (json.length < length) throw short(HEADER_AT + json.length, length - json.length);
  return checkedHeader(json, config, expect);
}

/**
 * Reads segments in archive order: each from BACKUP_DIR/wal when its file is there and good,
 * otherwise from the bucket, out of the pack that holds it (one read per pack, streamed: the pack
 * in hand is read on as the next segments are asked for), or, for a segment sent before packs,
 * its own object. Every segment is checked (`decodeSegment`) wherever it came from.
 */
export class SegmentReader {
  #open: OpenPack | undefined;

  constructor(
    private readonly config: Config,
    private readonly catalog: Catalog | undefined,
  ) {}

  async read(segment: WalSegmentRow): Promise<SegmentRead> {
    const problems: string[] = [];
    try {
      const stored = await localSegmentBytes(this.config, segment);
      if (stored) return { ok: true, frames: await decodeSegment(this.config, segment, stored), source: 'primary' };
      problems.push(`primary: no such file ${segmentStoresOf(this.config).primary.localPath(segment.file_name)}`);
    } catch (err) {
      problems.push(`primary: ${messageOf(err)}`);
    }
    const { mirror } = segmentStoresOf(this.config);
    if (mirror) {
      try {
        const stored = await this.fromBucket(mirror, segment);
        return { ok: true, frames: await decodeSegment(this.config, segment, stored), source: 'mirror' };
      } catch (err) {
        // The pack in hand may be part read: the next segment opens it afresh.
        this.close();
        problems.push(`mirror: ${messageOf(err)}`);
      }
    }
    return { ok: false, problem: `segment ${segment.file_name}: ${problems.join('; ')}` };
  }

  private async fromBucket(mirror: BackupStorage, segment: WalSegmentRow): Promise<Buffer> {
    const pack = this.catalog?.walBucket.packOf(segment.generation_id, segment.seq);
    if (!pack) return readWhole(await mirror.read(segment.file_name));
    let open = this.#open;
    const index = open?.name === pack.name ? open.header.segments.findIndex((s) => s.seq === segment.seq) : -1;
    if (!open || index < open.next) {
      this.close();
      open = this.#open = await openPack(mirror, pack.name, this.config, {
        generation: pack.generation_id,
        firstSeq: pack.first_seq,
        lastSeq: pack.last_seq,
      });
    }
    const at = open.header.segments.findIndex((s) => s.seq === segment.seq);
    if (at < 0) throw new Error(`${pack.name} does not hold segment ${segment.seq}`);
    for (; open.next < at; open.next++) await open.reader.skip(open.header.segments[open.next]!.sizeBytes);
    const entry = open.header.segments[at]!;
    if (entry.sha256 !== segment.checksum || entry.fileName !== segment.file_name) {
      throw new Error(`${pack.name} describes segment ${segment.seq} otherwise than the catalog does`);
    }
    const bytes = await open.reader.take(entry.sizeBytes);
    open.next = at + 1;
    return bytes;
  }

  close(): void {
    this.#open?.reader.close();
    this.#open = undefined;
  }
}

async function readWhole(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

/** One segment's frames (a reader for a single look; a pass over many keeps one `SegmentReader`). */
export async function readSegment(config: Config, segment: WalSegmentRow, catalog?: Catalog): Promise<SegmentRead> {
  const reader = new SegmentReader(config, catalog);
  try {
    return await reader.read(segment);
  } finally {
    reader.close();
  }
}
