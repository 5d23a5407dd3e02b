import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/shared/domain/errors.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { keyId, keyringOf } from '../../src/shared/codec/encryption.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-storage-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const base = { BACKUP_DIR: path.join(dir, 'backups') };

describe('storage configuration', () => {
  it('reads every compression mode; true means gzip', () => {
    expect(parseConfig({ ...base, BACKUP_COMPRESSION: 'true' }).compression).toBe('gzip');
    expect(parseConfig({ ...base, BACKUP_COMPRESSION: 'false' }).compression).toBe('none');
    expect(parseConfig({ ...base, BACKUP_COMPRESSION: 'zstd' }).compression).toBe('zstd');
    expect(() => parseConfig({ ...base, BACKUP_COMPRESSION: 'lz4' })).toThrow(
      /Invalid BACKUP_COMPRESSION="lz4": expected false, true, gzip or zstd/,
    );
  });

  it('refuses a malformed key without showing it', () => {
    const bad = Buffer.alloc(16, 7).toString('base64');
    let message = '';
    try {
      parseConfig({ ...base, BACKUP_ENCRYPTION_KEY: bad });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/Invalid BACKUP_ENCRYPTION_KEY=\(hidden\): expected 32 bytes as base64/);
    expect(message).not.toContain(bad);
    expect(() => parseConfig({ ...base, BACKUP_DECRYPTION_KEYS: `${randomBytes(32).toString('base64')},nope` })).toThrow(
      /Invalid BACKUP_DECRYPTION_KEYS=\(hidden\)/,
    );
  });

  it('takes the key from a file (base64 or raw), the old keys for reading only', () => {
    const key = randomBytes(32);
    const old = randomBytes(32);
    const b64File = path.join(dir, 'key.b64');
    const rawFile = path.join(dir, 'key.raw');
    fs.writeFileSync(b64File, `${key.toString('base64')}\n`);
    fs.writeFileSync(rawFile, key);
    for (const file of [b64File, rawFile]) {
      const ring = keyringOf(parseConfig({ ...base, BACKUP_ENCRYPTION_KEY_FILE: file, BACKUP_DECRYPTION_KEYS: old.toString('base64') }));
      expect(ring.write?.id).toBe(keyId(key));
      expect([...ring.read.keys()].sort()).toEqual([keyId(key), keyId(old)].sort());
    }
    expect(keyringOf(parseConfig({ ...base, BACKUP_DECRYPTION_KEYS: old.toString('base64') })).write).toBeUndefined();
    expect(() => parseConfig({ ...base, BACKUP_ENCRYPTION_KEY: key.toString('base64'), BACKUP_ENCRYPTION_KEY_FILE: b64File })).toThrow(
      /either BACKUP_ENCRYPTION_KEY or BACKUP_ENCRYPTION_KEY_FILE/,
    );
    expect(() => keyringOf(parseConfig({ ...base, BACKUP_ENCRYPTION_KEY_FILE: path.join(dir, 'missing') }))).toThrow(
      /cannot read BACKUP_ENCRYPTION_KEY_FILE/,
    );
  });

  it('wants the mirror apart from the backup directory', () => {
    expect(() => parseConfig({ ...base, BACKUP_MIRROR_DIR: base.BACKUP_DIR })).toThrow(/Invalid BACKUP_MIRROR_DIR/);
    expect(() => parseConfig({ ...base, BACKUP_MIRROR_DIR: path.join(base.BACKUP_DIR, 'mirror') })).toThrow(/Invalid BACKUP_MIRROR_DIR/);
    expect(parseConfig({ ...base, BACKUP_MIRROR_DIR: path.join(dir, 'mirror') }).mirrorDir).toBe(path.join(dir, 'mirror'));
  });

  it('takes the mirror as a URL: a bucket or a directory, never both variables', () => {
    const s3 = parseConfig({
      ...base,
      BACKUP_MIRROR_URL: 's3://acc-bucket/workstation/',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9000',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect(s3.mirrorUrl).toBe('s3://acc-bucket/workstation');
    expect(s3.mirrorDir).toBeUndefined();
    expect(s3.s3).toEqual({ region: undefined, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
    // The S3-specific endpoint wins over the general one, as in the AWS SDK.
    expect(parseConfig({ ...base, AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://b:2' }).s3.endpoint).toBe('http://b:2');
    const file = parseConfig({ ...base, BACKUP_MIRROR_URL: `file://${path.join(dir, 'away')}` });
    expect(file.mirrorDir).toBe(path.join(dir, 'away'));
    expect(parseConfig({ ...base, BACKUP_MIRROR_DIR: path.join(dir, 'away') }).mirrorUrl).toBe(file.mirrorUrl);
    expect(() => parseConfig({ ...base, BACKUP_MIRROR_URL: `file://${path.join(base.BACKUP_DIR, 'in')}` })).toThrow(
      /Invalid BACKUP_MIRROR_URL/,
    );
    expect(() => parseConfig({ ...base, BACKUP_MIRROR_DIR: path.join(dir, 'm'), BACKUP_MIRROR_URL: 's3://acc-bucket/w' })).toThrow(
      /set either BACKUP_MIRROR_DIR or BACKUP_MIRROR_URL, not both/,
    );
    for (const bad of ['s3://', 'http://acc-bucket/x', 's3://UPPER/x', 'file://relative/dir']) {
      expect(() => parseConfig({ ...base, BACKUP_MIRROR_URL: bad })).toThrow(/Invalid BACKUP_MIRROR_URL=.*expected s3:\/\/bucket\/prefix/);
    }
    expect(() => parseConfig({ ...base, BACKUP_MIRROR_TIMEOUT: '10' })).toThrow(
      /Invalid BACKUP_MIRROR_TIMEOUT="10": expected at least 100/,
    );
  });
});
