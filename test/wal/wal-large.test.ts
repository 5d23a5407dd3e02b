/**
 * One transaction larger than the archiver reads in one go (64 MiB): it is shipped whole, as one
 * segment that ends on its commit, and a replay of the archive holds every row of it. Before, the
 * archiver read the same first 64 MiB again at every sync, found no commit in it, and never
 * shipped the transaction (the lag grew for good). The archiver runs in this process; the
 * application writes from a process of its own.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/shared/backup/backup.js';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { WalArchiver } from '../../src/shared/wal/archiver.js';
import { discard, replayGeneration } from '../../src/shared/wal/replay.js';
import { sandbox, waitUntil, type Sandbox } from '../helpers/env.js';
import { testLogger } from '../helpers/log.js';

const require = createRequire(import.meta.url);
const ROWS = 26_000;
const ROW_BYTES = 3_000;

let box: Sandbox;
let catalog: Catalog;

beforeAll(() => {
  box = sandbox('wal-large', { LOG_LEVEL: 'warn' });
  const db = new Database(box.config.databasePath);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB NOT NULL)');
  db.close();
  catalog = new Catalog(box.config.catalogPath);
});

afterAll(async () => {
  catalog?.close();
  await box?.cleanup();
});

/** The application: one transaction of ROWS rows (about 80 MB of WAL), in a process of its own. */
function writeOneBigTransaction(file: string): Promise<number> {
  const script = `
    const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
    const db = new Database(${JSON.stringify(file)});
    db.pragma('busy_timeout = 10000');
    const insert = db.prepare('INSERT INTO big (v) VALUES (?)');
    db.transaction(() => { for (let i = 0; i < ${ROWS}; i++) insert.run(Buffer.alloc(${ROW_BYTES}, i % 251)); })();
    db.close();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? -1));
  });
}

describe('a transaction larger than one read of the WAL', () => {
  it('is shipped whole in one segment ending on its commit, and a replay holds every row', async () => {
    const { config } = box;
    const log = testLogger(config, 'wal-large');
    const stop = new AbortController();
    const archiver = new WalArchiver(
      { config, catalog, log },
      {
        intervalMs: () => 200,
        signal: stop.signal,
        takeSnapshot: async () => {
          const row = await createBackup({ config, catalog, log }, { type: 'scheduled', jobId: null });
          return { backupId: row.id, completedAt: row.completed_at! };
        },
      },
    );
    const running = archiver.run();
    try {
      const generation = await waitUntil('a generation with its snapshot', () => {
        const g = catalog.wal.openGeneration();
        return g?.snapshot_backup_id ? g : undefined;
      });
      expect(await writeOneBigTransaction(config.databasePath)).toBe(0);
      const segment = await waitUntil(
        'the big transaction in the archive',
        () => catalog.wal.segments(generation.id).find((s) => s.last_offset - s.first_offset > 64 * 2 ** 20),
        60_000,
      );
      expect(segment.commits).toBe(1);
      stop.abort();
      await running;

      const replayed = await replayGeneration(config, catalog, catalog.wal.generation(generation.id)!);
      try {
        const db = new Database(replayed.copy.path, { readonly: true });
        try {
          expect(db.prepare('SELECT count(*) AS n, sum(length(v)) AS bytes FROM big').get()).toEqual({ n: ROWS, bytes: ROWS * ROW_BYTES });
        } finally {
          db.close();
        }
      } finally {
        await discard(replayed);
      }
    } finally {
      stop.abort();
      await running;
    }
  }, 120_000);
});
