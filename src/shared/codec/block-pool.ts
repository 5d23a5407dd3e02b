import os from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Blocks in flight at once: one per core. Both codecs' bindings run on libuv's thread pool (4
 * threads by default), so this many blocks compress or decompress on separate cores while the
 * event loop and the pool's file reads and writes stay free; no worker thread is needed.
 */
export const BLOCKS_IN_FLIGHT = Math.max(1, os.availableParallelism());

/**
 * Runs independent block jobs several at once and hands their outputs on in the order the blocks
 * were given. At most `limit` jobs are in flight after `add` returns (one more while it waits),
 * which bounds the memory to a few blocks whatever the size of the stream.
 */
export class InOrder {
  /** Jobs being run, oldest first: their outputs are emitted in this order. */
  private readonly inFlight: Promise<Buffer[]>[] = [];

  constructor(
    private readonly emit: (part: Buffer) => void,
    private readonly limit = BLOCKS_IN_FLIGHT,
  ) {}

  /** Starts a job, then waits until no more than `limit` are in flight. */
  async add(job: Promise<Buffer[]>): Promise<void> {
    // A rejection is handled where the job is awaited; this only stops it being reported early.
    job.catch(() => undefined);
    this.inFlight.push(job);
    await this.settle(this.limit);
  }

  /** Emits finished jobs in order until at most `limit` are in flight (0: all of them). */
  async settle(limit = 0): Promise<void> {
    while (this.inFlight.length > limit) {
      for (const part of await this.inFlight.shift()!) this.emit(part);
    }
  }
}

/**
 * Compresses a stream as a sequence of independent blocks of `blockBytes` input each, several at
 * once (see `InOrder`). A read that is exactly one block (the backup's file reads are) is used as
 * it is; smaller reads are joined once per block, larger ones cut without copying.
 */
export class ParallelBlockEncoder extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly blocks: InOrder;

  constructor(
    private readonly pack: (block: Buffer) => Promise<Buffer[]>,
    private readonly blockBytes: number,
    parallel = BLOCKS_IN_FLIGHT,
  ) {
    super();
    this.blocks = new InOrder((part) => this.push(part), parallel);
  }

  /** Whole blocks out of what is pending, the rest kept pending. */
  private cut(): Buffer[] {
    let input = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    // At most `blockBytes` per block however large the chunk (a WAL segment comes as one): the
    // zstd reader refuses a frame longer than its limit as damage.
    const blocks: Buffer[] = [];
    while (input.length >= this.blockBytes) {
      blocks.push(input.subarray(0, this.blockBytes));
      input = input.subarray(this.blockBytes);
    }
    this.pending = input.length ? [input] : [];
    this.pendingBytes = input.length;
    return blocks;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.blockBytes) return done();
    const blocks = this.cut();
    (async () => {
      for (const block of blocks) await this.blocks.add(this.pack(block));
    })().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    const last = this.pendingBytes ? Buffer.concat(this.pending, this.pendingBytes) : undefined;
    this.pending = [];
    this.pendingBytes = 0;
    (async () => {
      if (last) await this.blocks.add(this.pack(last));
      await this.blocks.settle(0);
    })().then(() => done(), done);
  }
}

/** What a framing reader found at the start of its buffered bytes. */
export type Framed =
  /** A whole unit of `bytes` bytes, decoded by `decode`. */
  | { bytes: number; decode: (unit: Buffer) => Promise<Buffer[]> }
  /** Not enough bytes yet: at least `needed` must be buffered to tell. */
  | { needed: number };

/**
 * Decodes a stream of independent, length-announced units (zstd frames, gzip members) several at
 * once, in order. `frame` reads the buffered bytes (it throws on damage); `end` says what is wrong
 * with bytes left over at the end of the input, if anything is.
 */
export class ParallelBlockDecoder extends Transform {
  private buffered: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes needed before the next unit can be framed. */
  private needed = 1;
  private readonly blocks: InOrder;

  constructor(
    private readonly frame: (buffered: Buffer) => Framed,
    private readonly truncated: string,
    parallel = BLOCKS_IN_FLIGHT,
  ) {
    super();
    this.blocks = new InOrder((part) => this.push(part), parallel);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    // Collect small reads and join them once the next unit is complete, not on every read.
    this.parts.push(chunk);
    this.partBytes += chunk.length;
    if (this.buffered.length + this.partBytes < this.needed) return done();
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, ...this.parts]) : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    this.drain().then(() => done(), done);
  }

  private async drain(): Promise<void> {
    for (;;) {
      const found = this.frame(this.buffered);
      if ('needed' in found) {
        this.needed = found.needed;
        if (this.buffered.length < found.needed) return;
        throw new Error('framing asked for bytes it already has');
      }
      const unit = this.buffered.subarray(0, found.bytes);
      this.buffered = this.buffered.subarray(found.bytes);
      await this.blocks.add(found.decode(unit));
      if (!this.buffered.length) {
        this.needed = 1;
        return;
      }
    }
  }

  override _flush(done: TransformCallback): void {
    const left = this.buffered.length + this.partBytes;
    this.blocks.settle(0).then(() => done(left ? new Error(this.truncated) : undefined), done);
  }
}
