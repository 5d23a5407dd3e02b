import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/shared/backup/backup.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { testLogger } from '../helpers/log.js';
import { applyRetention } from '../../src/shared/backup/retention.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { openCatalog } from '../helpers/producer.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';
import { withCatalogDb } from '../helpers/catalog-db.js';

let box: Sandbox;
let catalog: Catalog;
const log = testLogger({ logLevel: 'warn' }, 'test');

beforeAll(() => {
  box = sandbox('retention');
  createWorkstationDb(box.config.databasePath, { sizeMb: 0.2 });
  catalog = openCatalog(box.config);
});

afterAll(async () => {
  catalog?.close();
  await box?.cleanup();
});

const backup = () => createBackup({ config: box.config, catalog, log }, { type: 'manual', jobId: null });

describe('retention', () => {
  it('keeps the newest backups, a leased one, and the newest one not known to be invalid', async () => {
    const made = [];
    for (let i = 0; i < 6; i++) made.push(await backup());
    const [b1, b2, b3, b4, b5, b6] = made.map((b) => b.id) as [number, number, number, number, number, number];
    // b6 and b5 failed verification; b4 is the newest that did not. b2 is being read by a job.
    catalog.recordVerification(b6, 'full', false, 'checksum mismatch', []);
    catalog.recordVerification(b5, 'full', false, 'checksum mismatch', []);
    catalog.lease(b2, 'verify:job-1', 60_000);
    // An expired lease protects nothing.
    catalog.lease(b1, 'verify:job-0', -1);

    const deleted = await applyRetention(catalog, 2, log);

    expect(deleted.sort()).toEqual([b1, b3].sort());
    const left = catalog.completedBackups().map((b) => b.id);
    expect(left).toEqual([b6, b5, b4, b2]);
    for (const b of made) expect(fs.existsSync(b.file_path)).toBe(left.includes(b.id));
  });

  it('never deletes a file that is not named like a backup, whatever a row says', async () => {
    const token = `${box.config.backupDir}/.api-token`;
    fs.writeFileSync(token, 'a-token-of-the-service-0123456789\n');
    withCatalogDb(catalog.file, (db) =>
      db
        .prepare(
          `INSERT INTO backup_log (id, backup_type, file_path, file_size_bytes, started_at, completed_at, status, checksum)
           VALUES (1, 'manual', ?, 33, '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:01.000Z', 'completed', 'x')`,
        )
        .run(token),
    );
    catalog.recordVerification(1, 'full', false, 'checksum mismatch', []);
    const deleted = await applyRetention(catalog, 1, log, box.config);
    expect(deleted).not.toContain(1);
    expect(fs.readFileSync(token, 'utf8')).toBe('a-token-of-the-service-0123456789\n');
    catalog.deleteBackup(1);
  });

  it('deletes nothing while the count is within the limit', async () => {
    const before = catalog.completedBackups().length;
    expect(await applyRetention(catalog, before, log)).toEqual([]);
    expect(catalog.completedBackups()).toHaveLength(before);
  });
});
