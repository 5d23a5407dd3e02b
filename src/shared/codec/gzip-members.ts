import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { constants, createGunzip, gunzip, gzip, type ZlibOptions } from 'node:zlib';
import { messageOf } from '../domain/errors.js';
import { ParallelBlockDecoder, type Framed } from './block-pool.js';

/**
 * Input bytes per gzip member. A gzip file may hold several members one after the other, and
 * `gzip -d` and Node's gunzip both read it as the concatenation of their contents: so blocks
 * compress independently, in parallel. Each member restarts gzip's 32 KiB window, which costs
 * well under a percent of size at this block size.
 */
export const GZIP_MEMBER_INPUT = 4 << 20;

/**
 * Each member announces its own length in its header's extra field (FEXTRA, RFC 1952 2.3.1.1), as
 * BGZF does with its "BC" subfield, so a reader can cut the file into members without inflating
 * it and inflate several at once. BGZF's field holds 16 bits (64 KiB members, too small for a good
 * ratio here), so this is a subfield of our own: "WB", 4 bytes, the member's total length (header
 * to trailer) as u32 LE. gzip, zlib and Node skip extra fields they do not know.
 */
const SUBFIELD = Buffer.from('WB');
const HEADER_BYTES = 10;
/** XLEN (2) + subfield id (2) + its length (2) + the member length (4). */
const EXTRA_BYTES = 2 + 2 + 2 + 4;
const FEXTRA = 4;
/** deflate never grows its input by more than a little: a longer member announced is damage. */
const MAX_MEMBER_BYTES = 2 * GZIP_MEMBER_INPUT;

const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);
const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
/** Level 1 with zlib's largest hash table: the fastest deflate Node has (about 150 MB per CPU-second). */
const OPTIONS: ZlibOptions = { level: constants.Z_BEST_SPEED, memLevel: 9 };

/** One gzip member whose header announces its length; the deflate stream is zlib's, not copied. */
export async function gzipMember(input: Buffer): Promise<Buffer[]> {
  const plain = await gzipAsync(input, OPTIONS);
  // zlib writes a 10-byte header without optional fields (FLG 0): the extra field goes after it.
  const header = Buffer.alloc(HEADER_BYTES + EXTRA_BYTES);
  plain.copy(header, 0, 0, HEADER_BYTES);
  header[3] = FEXTRA;
  header.writeUInt16LE(EXTRA_BYTES - 2, 10);
  SUBFIELD.copy(header, 12);
  header.writeUInt16LE(4, 14);
  header.writeUInt32LE(header.length + plain.length - HEADER_BYTES, 16);
  return [header, plain.subarray(HEADER_BYTES)];
}

/**
 * The member length announced at the start of `head`, `null` when the member announces none (a
 * backup written before members carried it), or `undefined` when more bytes are needed to tell.
 */
function announcedLength(head: Buffer): number | null | undefined {
  if (head.length < HEADER_BYTES) return undefined;
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) throw new Error('not a gzip file (bad magic bytes)');
  if (!((head[3] ?? 0) & FEXTRA)) return null;
  if (head.length < HEADER_BYTES + 2) return undefined;
  const xlen = head.readUInt16LE(HEADER_BYTES);
  if (head.length < HEADER_BYTES + 2 + xlen) return undefined;
  for (let at = HEADER_BYTES + 2; at + 4 <= HEADER_BYTES + 2 + xlen;) {
    const size = head.readUInt16LE(at + 2);
    if (head[at] === SUBFIELD[0] && head[at + 1] === SUBFIELD[1] && size === 4) return head.readUInt32LE(at + 4);
    at += 4 + size;
  }
  return null;
}

function gzipFramer(): (buffered: Buffer) => Framed {
  let index = 0;
  return (buffered) => {
    const length = announcedLength(buffered);
    if (length === undefined) return { needed: HEADER_BYTES + 2 + (buffered.length >= HEADER_BYTES + 2 ? buffered.readUInt16LE(10) : 0) };
    if (length === null) throw new Error(`gzip member ${index} does not announce its length: the backup is damaged`);
    if (length < HEADER_BYTES + EXTRA_BYTES + 8 || length > MAX_MEMBER_BYTES) {
      throw new Error(`gzip member ${index} announces ${length} bytes: the backup is damaged`);
    }
    if (buffered.length < length) return { needed: length };
    const at = index++;
    return {
      bytes: length,
      decode: async (unit) => {
        try {
          return [await gunzipAsync(unit, {})];
        } catch (err) {
          throw new Error(`gzip member ${at} is damaged: ${messageOf(err)}`, { cause: err });
        }
      },
    };
  };
}

export const GZIP_TRUNCATED = 'the gzip backup is truncated (incomplete member)';

/**
 * Reads gzip: several members at once when they announce their lengths, else (a backup written
 * before they did: one member, or several without lengths) through zlib's gunzip, one at a time.
 * The first member's header decides; the chosen decoder's output is passed on with backpressure.
 */
export class GzipDecodeStream extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private inner: Transform | undefined;
  private ended: Promise<void> | undefined;

  private choose(): void {
    const head = Buffer.concat(this.head, this.headBytes);
    const inner = announcedLength(head) === null ? createGunzip() : new ParallelBlockDecoder(gzipFramer(), GZIP_TRUNCATED);
    this.ended = new Promise<void>((resolve, reject) => {
      inner.on('end', resolve);
      inner.on('error', reject);
    });
    this.ended.catch((err: unknown) => this.destroy(err as Error));
    inner.on('data', (part: Buffer) => {
      if (!this.push(part)) inner.pause();
    });
    this.inner = inner;
    this.head = [];
    this.headBytes = 0;
    this.feed(head, () => undefined);
  }

  private feed(chunk: Buffer, done: TransformCallback): void {
    if (this.inner!.write(chunk)) done();
    else this.inner!.once('drain', () => done());
  }

  override _read(size: number): void {
    this.inner?.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      if (this.inner) return this.feed(chunk, done);
      this.head.push(chunk);
      this.headBytes += chunk.length;
      if (announcedLength(Buffer.concat(this.head, this.headBytes)) !== undefined) this.choose();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    // Too short to tell: zlib's gunzip says what is wrong with it.
    if (!this.inner) this.choose();
    this.inner!.end();
    this.ended!.then(() => done(), done);
  }
}
