/**
 * What the WAL archive sends once per interval goes up in one request and is checked all the same:
 * `S3Storage.putNew` is one PutObject (no HEAD before or after), and a body damaged on its way is
 * not left in the bucket as good — the stored object's ETag (its MD5) is compared with the bytes
 * sent, since neither test server checks the SHA-256 or Content-MD5 headers the way S3 does.
 * Through a recording proxy that can flip a byte of a PUT's body, in front of a real s3rver.
 */
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { openStorage } from '../../src/shared/storage/registry.js';
import type { BackupStorage } from '../../src/shared/storage/storage.js';
import { S3Server } from '../helpers/s3.js';

let s3: S3Server;
let store: BackupStorage;
let dir: string;

beforeAll(async () => {
  s3 = await S3Server.start({ record: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-put-new-'));
  const env: Record<string, string> = { ...s3.env('putnew'), BACKUP_DIR: path.join(dir, 'b'), DATABASE_PATH: path.join(dir, 'db') };
  // The SDK takes its credentials from the environment, as the service does.
  process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
  const config = parseConfig(env);
  store = openStorage('mirror', config.mirrorUrl!, config);
});

afterAll(async () => {
  await s3?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

function file(bytes: Buffer): { path: string; sha256: string } {
  const p = path.join(dir, `f-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(p, bytes);
  return { path: p, sha256: createHash('sha256').update(bytes).digest('hex') };
}

describe('putNew', () => {
  it('is one PUT, and the object holds the bytes sent', async () => {
    const bytes = randomBytes(300_000);
    const f = file(bytes);
    const from = s3.requests.length;
    await store.putNew!(f.path, 'pack-a', f.sha256);
    expect(s3.requests.slice(from).map((l) => l.split(' ')[0])).toEqual(['PUT']);
    expect(await s3.sha256('putnew/pack-a')).toBe(f.sha256);
  });

  it('refuses a body damaged on its way, and leaves no object that could pass for good', async () => {
    const f = file(randomBytes(300_000));
    s3.corruptPuts(/pack-b/);
    try {
      await expect(store.putNew!(f.path, 'pack-b', f.sha256)).rejects.toThrow(/has MD5 [0-9a-f]{32}, expected [0-9a-f]{32}/);
    } finally {
      s3.corruptPuts(undefined);
    }
    expect(await s3.keys('putnew/')).not.toContain('putnew/pack-b');
  });

  it('refuses a file whose bytes are not the SHA-256 it is sent as, before sending anything', async () => {
    const f = file(randomBytes(1_000));
    const from = s3.requests.length;
    await expect(store.putNew!(f.path, 'pack-c', '0'.repeat(64))).rejects.toThrow(/expected 0{64}/);
    expect(s3.requests.slice(from)).toEqual([]);
  });
});
