import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from './storage.js';

/** Ranges of 8 MiB, four at once: a download holds about 32 MiB whatever the object's size. */
export const DOWNLOAD_PART_SIZE = 8 * 1024 * 1024;
export const DOWNLOAD_IN_FLIGHT = 4;
/** Attempts of a range whose answer broke off, after its first; the client retries failed requests itself. */
const RANGE_RETRIES = 2;
const RETRY_DELAY_MS = 250;

export interface DownloadRequest {
  client: S3Client;
  bucket: string;
  key: string;
  /** The object's size (a HeadObject's Content-Length, or the total of a ranged GET's Content-Range). */
  size: number;
  /** The object's ETag from the same answer: every range must come from that object. */
  etag?: string;
  /**
   * The body of a GET of the first part (`bytes=0-(partSize - 1)`) already under way, its
   * Content-Range and ETag checked by the caller: read as that part instead of asking again.
   */
  first?: Readable;
  partSize?: number;
  /** Ranges downloading or waiting to be read at once: `inFlight × partSize` bytes at most. */
  inFlight?: number;
  signal?: AbortSignal;
  /** What the stream fails with for an error: the caller's wording. */
  explain?: (err: unknown) => Error;
}

interface Failure {
  $metadata?: { httpStatusCode?: number };
}

/** An answer that is not the object the download started on, or not the bytes asked for: asking again cannot help. */
class Mismatch extends StorageError {}

function abortError(signal: AbortSignal): Error {
  const err = new Error('Request aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/**
 * The object's bytes in order, read as ranged GETs (`Range: bytes=a-b`) of `partSize`, up to
 * `inFlight` at once. Each range is read off its connection as fast as it comes and kept as the
 * chunks that arrived (no copy); the first range in order is passed on while it arrives. A range
 * is started only when its whole length fits beside what the other ranges still hold and what
 * the reader has not taken yet (`inFlight × partSize` in all), so a slow reader stops the
 * downloads instead of growing memory, and no connection ever waits on the reader.
 *
 * Every answer's Content-Range (Content-Length for a plain GET), length and ETag are checked,
 * and the ETag is sent as If-Match, so an object replaced meanwhile fails the stream rather than
 * mixing two objects. A range whose answer breaks off is asked for again, twice at most, from the
 * byte it had reached (the client has already retried failed requests); a failure that remains,
 * or an abort, destroys the stream with the error. An object of one part is one plain GET. A
 * first part already asked for (`first`) is read from that answer, and retried like any other.
 */
export function downloadObject(req: DownloadRequest): Readable {
  return new RangedDownload(req);
}

interface Part {
  start: number;
  length: number;
  /** Arrived and not yet pushed. */
  chunks: Buffer[];
  received: number;
  done: boolean;
}

class RangedDownload extends Readable {
  readonly #req: DownloadRequest;
  readonly #partSize: number;
  readonly #inFlight: number;
  readonly #count: number;
  readonly #controller = new AbortController();
  readonly #bodies = new Set<Readable>();
  /** Started and not yet wholly pushed. */
  readonly #parts = new Map<number, Part>();
  #etag: string | undefined;
  /** The first part's body handed in, until its part starts. */
  #first: Readable | undefined;
  #nextToStart = 0;
  #nextToPush = 0;
  #running = 0;
  /** Bytes the started parts may still hold: their lengths less what was pushed. */
  #held = 0;
  /** The reader asked for more and nothing was pushed since. */
  #wanted = false;
  #ended = false;
  #onAbort: (() => void) | undefined;

  constructor(req: DownloadRequest) {
    super();
    this.#req = req;
    this.#etag = req.etag;
    this.#first = req.first;
    if (req.first) {
      this.#bodies.add(req.first);
      // A failure before the reader starts is kept by the stream and met when its part reads it.
      req.first.on('error', () => undefined);
    }
    this.#partSize = Math.max(1, Math.floor(req.partSize ?? DOWNLOAD_PART_SIZE));
    this.#inFlight = Math.max(1, Math.floor(req.inFlight ?? DOWNLOAD_IN_FLIGHT));
    this.#count = Math.max(1, Math.ceil(req.size / this.#partSize));
    const signal = req.signal;
    if (signal) {
      this.#onAbort = () => this.#fail(abortError(signal));
      if (signal.aborted) queueMicrotask(this.#onAbort);
      else signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  override _read(): void {
    this.#wanted = true;
    this.#pump();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#onAbort) this.#req.signal?.removeEventListener('abort', this.#onAbort);
    this.#controller.abort();
    for (const body of this.#bodies) body.destroy();
    this.#parts.clear();
    callback(err);
  }

  #fail(err: unknown): void {
    if (this.destroyed) return;
    this.destroy(this.#req.explain ? this.#req.explain(err) : (err as Error));
  }

  #pump(): void {
    if (this.destroyed || this.#ended) return;
    while (this.#wanted) {
      const part = this.#parts.get(this.#nextToPush);
      if (!part) break;
      const chunk = part.chunks.shift();
      if (chunk) {
        this.#held -= chunk.length;
        this.#wanted = this.push(chunk);
      } else if (part.done) {
        this.#parts.delete(this.#nextToPush++);
      } else break;
    }
    if (this.#nextToPush === this.#count) {
      this.#ended = true;
      this.push(null);
      return;
    }
    const budget = this.#inFlight * this.#partSize;
    while (this.#nextToStart < this.#count && this.#running < this.#inFlight) {
      const index = this.#nextToStart;
      const start = index * this.#partSize;
      const length = Math.min(this.#req.size, start + this.#partSize) - start;
      // The next part in order always starts: nothing else would free the budget.
      if (index !== this.#nextToPush && this.#held + this.readableLength + length > budget) break;
      const part: Part = { start, length, chunks: [], received: 0, done: false };
      this.#parts.set(index, part);
      this.#nextToStart++;
      this.#running++;
      this.#held += length;
      this.#fetch(index, part).then(
        () => {
          part.done = true;
          this.#running--;
          this.#pump();
        },
        (err: unknown) => this.#fail(err),
      );
    }
  }

  async #fetch(index: number, part: Part): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const body = index === 0 && this.#first ? this.#first : await this.#request(part);
      this.#first = undefined;
      try {
        return await this.#receive(index, part, body);
      } catch (err) {
        if (this.#controller.signal.aborted || attempt >= RANGE_RETRIES || err instanceof Mismatch) throw err;
        await sleep(RETRY_DELAY_MS * (attempt + 1), undefined, { signal: this.#controller.signal });
      }
    }
  }

  #where(): string {
    return `s3://${this.#req.bucket}/${this.#req.key}`;
  }

  /** A GET of what the part still lacks, its answer checked: the body to read. */
  async #request(part: Part): Promise<Readable> {
    const { client, bucket, key, size } = this.#req;
    const from = part.start + part.received;
    const end = part.start + part.length - 1;
    // A plain GET for an object of one part, unless an earlier attempt got some of it.
    const whole = this.#count === 1 && from === 0;
    const where = this.#where();
    const range = whole ? undefined : `bytes=${from}-${end}`;
    const res = await client
      .send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range, IfMatch: this.#etag }), { abortSignal: this.#controller.signal })
      .catch((err: unknown) => {
        if ((err as Failure).$metadata?.httpStatusCode !== 412) throw err;
        throw new Mismatch(`${where} changed while it was read (not ETag ${this.#etag} any more)`, { cause: err });
      });
    const body = res.Body as Readable | undefined;
    if (!body) throw new StorageError(`${where} has no body`);
    // Ranges started before the first answer pin the ETag that answer carried.
    this.#etag ??= res.ETag;
    let problem: string | undefined;
    if (res.ETag && res.ETag !== this.#etag) problem = `${where} changed while it was read (ETag ${res.ETag}, was ${this.#etag})`;
    else if (whole && res.ContentLength !== size) problem = `${where} changed while it was read (${res.ContentLength} bytes, was ${size})`;
    else if (!whole && res.ContentRange !== `bytes ${from}-${end}/${size}`)
      problem = `${where} answered ${range} of ${size} with ${res.ContentRange ?? 'the whole object'}`;
    if (problem) {
      body.destroy();
      throw new Mismatch(problem);
    }
    if (this.destroyed) body.destroy();
    else this.#bodies.add(body);
    return body;
  }

  /** Keeps the body's chunks as they arrive; pushes them at once when the part is next in order. */
  async #receive(index: number, part: Part, body: Readable): Promise<void> {
    const from = part.start + part.received;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (part.received + chunk.length > part.length)
          throw new Mismatch(`${this.#where()}: more than the ${part.start + part.length - from} bytes asked for at ${from}`);
        part.chunks.push(chunk);
        part.received += chunk.length;
        if (index === this.#nextToPush && this.#wanted) this.#pump();
      }
      if (part.received !== part.length)
        throw new StorageError(
          `${this.#where()}: ${part.received + part.start - from} of ${part.start + part.length - from} bytes at ${from} before the answer ended`,
        );
    } finally {
      this.#bodies.delete(body);
      body.destroy();
    }
  }
}
