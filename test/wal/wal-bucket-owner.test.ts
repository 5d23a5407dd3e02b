/**
 * One archive, one writer. A host that rebuilt its catalog from the bucket takes over the archive's
 * id; if the first host still runs and writes the same prefix, the two would write generations of
 * the same ids. The generation descriptions say which generation an id is (when it began): the
 * second writer is refused before it overwrites the first's description, and an archive of another
 * id is never overwritten. Real catalog files, a real s3rver.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { keyringOf } from '../../src/shared/codec/encryption.js';
import { parseConfig } from '../../src/shared/runtime/config.js';
import { adoptArchiveId, archiveIdOf } from '../../src/shared/wal/bucket-format.js';
import { publishGenerations } from '../../src/shared/wal/bucket-packs.js';
import { setProcessEnv } from '../helpers/env.js';
import { S3_CREDENTIALS_ENV, S3Server } from '../helpers/s3.js';

let s3: S3Server;
let dir: string;
let restoreEnv: () => void;

beforeAll(async () => {
  s3 = await S3Server.start();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-owner-'));
  restoreEnv = setProcessEnv(S3_CREDENTIALS_ENV);
});

afterAll(async () => {
  restoreEnv?.();
  await s3?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

const catalogAt = (name: string) => new Catalog(path.join(dir, name, 'catalog.db'));

describe('two writers of one archive', () => {
  it('the second is refused before it overwrites a generation of the first; another archive is never overwritten', async () => {
    const cfg = parseConfig({ ...s3.env('owner'), BACKUP_DIR: path.join(dir, 'b'), DATABASE_PATH: path.join(dir, 'db') });
    const ring = keyringOf(cfg);
    const mirror = s3.storage('owner/wal');
    const first = catalogAt('first');
    const second = catalogAt('second');
    const other = catalogAt('other');
    try {
      first.wal.beginGeneration('first start', 4096, null);
      expect(await publishGenerations(first, mirror, archiveIdOf(first), ring, {})).toBe(1);
      const written = await s3.text('owner/wal/generation-00000001.json');

      // A catalog rebuilt from the bucket: the same archive id, its own generation 1.
      adoptArchiveId(second, archiveIdOf(first));
      await new Promise((r) => setTimeout(r, 5));
      second.wal.beginGeneration('first start', 4096, null);
      await expect(publishGenerations(second, mirror, archiveIdOf(second), ring, {})).rejects.toThrow(
        /describes another generation 1 of this archive .*another host is writing this archive/,
      );
      // Another archive altogether.
      other.wal.beginGeneration('first start', 4096, null);
      await expect(publishGenerations(other, mirror, archiveIdOf(other), ring, {})).rejects.toThrow(/is not this archive's/);
      expect(await s3.text('owner/wal/generation-00000001.json')).toBe(written);

      // The first writer goes on: its own generation, described again once it changes.
      first.wal.endGeneration(1, 'ended');
      expect(await publishGenerations(first, mirror, archiveIdOf(first), ring, {})).toBe(1);
      expect(JSON.parse(await s3.text('owner/wal/generation-00000001.json'))).toMatchObject({ id: 1, endReason: 'ended' });
    } finally {
      for (const c of [first, second, other]) c.close();
    }
  });
});
