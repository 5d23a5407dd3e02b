/**
 * Encoding throughput of every backup mode: compression (none, gzip, zstd) with and without
 * encryption, on a database shaped like the application's. Prints one table.
 *
 *   npm run bench:compression -- [size in MB, default 64]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeStream, encodeFile } from '../src/shared/codec/codec.js';
import { COMPRESSION_MODES } from '../src/shared/domain/backup-types.js';
import { keyId } from '../src/shared/codec/encryption.js';
import Database from 'better-sqlite3';

export interface CompressionRow {
  mode: string;
  ratio: number;
  encodeMBps: number;
  decodeMBps: number;
}

/**
 * Rows like an application's: JSON workflow definitions with ids, timestamps and free text, so
 * the ratio means something (a padded test database compresses to almost nothing).
 */
function buildDatabase(file: string, sizeMb: number): void {
  const db = new Database(file);
  db.exec('CREATE TABLE workflows (id INTEGER PRIMARY KEY, name TEXT, definition TEXT, created_at TEXT)');
  const insert = db.prepare('INSERT INTO workflows (name, definition, created_at) VALUES (?, ?, ?)');
  const words = ['fetch', 'transform', 'notify', 'approve', 'archive', 'retry', 'branch', 'merge', 'schedule', 'report'];
  let bytes = 0;
  db.transaction(() => {
    for (let i = 0; bytes < sizeMb * 1048576; i++) {
      const steps = Array.from({ length: 6 }, (_, j) => ({
        id: randomBytes(8).toString('hex'),
        action: words[(i * 7 + j) % words.length],
        timeoutMs: 1000 * ((i + j) % 60),
        note: randomBytes(24).toString('base64'),
      }));
      const definition = JSON.stringify({ version: 1 + (i % 5), owner: `user-${i % 997}`, steps });
      insert.run(`workflow-${i}`, definition, new Date(1_700_000_000_000 + i * 60_000).toISOString());
      bytes += definition.length + 40;
    }
  })();
  db.close();
}

export async function compressionBench(sizeMb = 64): Promise<CompressionRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-'));
  try {
    const db = path.join(dir, 'workstation.db');
    buildDatabase(db, sizeMb);
    const size = fs.statSync(db).size;
    const bytes = randomBytes(32);
    const key = { id: keyId(bytes), bytes };
    const ring = { write: key, read: new Map([[key.id, key]]) };
    const rows: CompressionRow[] = [];
    for (const compression of COMPRESSION_MODES) {
      for (const encrypted of [false, true]) {
        if (compression === 'none' && !encrypted) continue;
        const packed = path.join(dir, `packed-${compression}-${encrypted}`);
        const out = `${packed}.out`;
        let t = performance.now();
        await encodeFile(db, packed, compression, encrypted ? key : undefined);
        const encodeMs = performance.now() - t;
        t = performance.now();
        await decodeStream(fs.createReadStream(packed), out, { compression, encryption: encrypted ? key.id : null }, ring);
        const decodeMs = performance.now() - t;
        rows.push({
          mode: `${compression}${encrypted ? ' + aes-256-gcm' : ''}`,
          ratio: fs.statSync(packed).size / size,
          encodeMBps: size / 1048576 / (encodeMs / 1000),
          decodeMBps: size / 1048576 / (decodeMs / 1000),
        });
        fs.rmSync(packed);
        fs.rmSync(out);
      }
    }
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sizeMb = Number(process.argv[2] ?? 64);
  const rows = await compressionBench(sizeMb);
  console.log(`Backup encoding of a ${sizeMb} MB database (level 1 for gzip and zstd)\n`);
  console.log(['mode'.padEnd(22), 'size'.padStart(7), 'encode MB/s'.padStart(12), 'decode MB/s'.padStart(12)].join(' '));
  for (const r of rows) {
    console.log(
      [
        r.mode.padEnd(22),
        `${(r.ratio * 100).toFixed(1)}%`.padStart(7),
        r.encodeMBps.toFixed(0).padStart(12),
        r.decodeMBps.toFixed(0).padStart(12),
      ].join(' '),
    );
  }
}
