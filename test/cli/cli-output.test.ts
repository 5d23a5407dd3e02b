/**
 * The CLI's answer reaches a pipe whole: a script reading `list --json` gets every row, however
 * large the document, before the process exits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { withCatalogDb } from '../helpers/catalog-db.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';

const ROWS = 5_000;
let box: Sandbox;

beforeAll(() => {
  box = sandbox('cli-output', { REDIS_URL: REDIS_DOWN });
  createWorkstationDb(box.config.databasePath, { sizeMb: 0.1 });
  new Catalog(box.config.catalogPath).close();
  withCatalogDb(box.config.catalogPath, (db) => {
    const insert = db.prepare(
      `INSERT INTO backup_log (backup_type, file_path, file_size_bytes, started_at, completed_at, status, checksum)
       VALUES ('manual', ?, 1024, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 'completed', ?)`,
    );
    db.transaction(() => {
      for (let i = 0; i < ROWS; i++) insert.run(`${box.config.backupDir}/workstation-backup-2026-01-01T00-00-00-${i}.db`, 'a'.repeat(64));
    })();
  });
});

afterAll(async () => {
  await box?.cleanup();
});

describe('the CLI writing to a pipe', () => {
  it('delivers a multi-megabyte --json answer whole before it exits', async () => {
    const run = await runCli(box.env, 'list', '--json', '--limit', String(ROWS));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.length).toBeGreaterThan(1_000_000);
    expect(run.json?.backups).toHaveLength(ROWS);
  });
});
