/**
 * S3Storage.read's memory under a slow reader (s3-download.ts) against a real S3-protocol server
 * (s3rver, no proxy in this process): a 128 MiB object read at about 48 MiB/s holds no more than
 * about (inFlight + 2) parts, retained and raw, against one plain GET read the same way.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWNLOAD_IN_FLIGHT, DOWNLOAD_PART_SIZE } from '../../src/shared/storage/s3-download.js';
import { setProcessEnv } from '../helpers/env.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { S3_CREDENTIALS_ENV, S3Server } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const PREFIX = 'download';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let s3: S3Server;
let dir: string;
let restoreEnv: (() => void) | undefined;

const storage = () => s3.storage(PREFIX);
const key = (name: string) => `${PREFIX}/${name}`;

/** A file of random bytes and its SHA-256. */
const randomFile = (name: string, size: number) => writeRandomFile(path.join(dir, name), size);

beforeAll(async () => {
  restoreEnv = setProcessEnv(S3_CREDENTIALS_ENV);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-s3-download-memory-'));
  // No recording proxy: its buffers would count in this process too.
  s3 = await S3Server.start();
});

afterAll(async () => {
  await s3?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
  restoreEnv?.();
});

describe('S3Storage.read under a slow reader', () => {
  it('a slow reader of a 128 MiB object: memory stays within about (inFlight + 2) parts', async () => {
    const SIZE = 128 * MiB;
    const huge = randomFile('huge.bin', SIZE);
    const direct = storage();
    await direct.put(huge.file, 'huge.bin', huge.sha256);
    fs.rmSync(huge.file);
    const bound = (DOWNLOAD_IN_FLIGHT + 2) * DOWNLOAD_PART_SIZE;
    // Retained: a full GC before each sample, so only what the download still holds counts.
    const retained = await slowRead(() => direct.read('huge.bin'), { gcEachSample: true });
    // Raw: what the process holds, including consumed chunks V8 has not collected yet…
    const raw = await slowRead(() => direct.read('huge.bin'));
    // …which a single plain GET (read() before) leaves behind as well, with the same reader.
    const plain = await slowRead(() => s3.stream(key('huge.bin')));
    for (const r of [retained, raw, plain]) {
      expect(r.length).toBe(SIZE);
      expect(r.sha256).toBe(huge.sha256);
    }
    const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
    console.log(
      `arrayBuffers growth: parallel ${mib(retained.growth)} retained, ${mib(raw.growth)} raw; one plain GET ${mib(plain.growth)} raw; bound ${mib(bound)}`,
    );
    expect(retained.growth).toBeLessThan(bound);
    expect(raw.growth - plain.growth).toBeLessThan(bound);
  });
});

/**
 * Reads `open()`'s stream at about 48 MiB/s, holding each chunk until its time is up, while
 * sampling `process.memoryUsage().arrayBuffers` (every Buffer; `external` counts them as well,
 * and lags behind frees); the peak's growth over a collected baseline.
 */
async function slowRead(open: () => Promise<Readable>, { gcEachSample = false } = {}) {
  gc();
  await sleep(100);
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const sample = () => {
    if (gcEachSample) gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  };
  const timer = setInterval(sample, gcEachSample ? 25 : 5);
  const hash = createHash('sha256');
  let length = 0;
  try {
    const stream = await open();
    const started = performance.now();
    const rate = (48 * MiB) / 1000;
    await pipeline(
      stream,
      new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          length += chunk.length;
          setTimeout(callback, Math.max(0, started + length / rate - performance.now()));
        },
      }),
    );
    sample();
  } finally {
    clearInterval(timer);
  }
  return { growth: peak - base, length, sha256: hash.digest('hex') };
}
