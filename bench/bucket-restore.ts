/**
 * Losing the host, measured: `node --import tsx bench/bucket-restore.ts [--size MiB] [--seconds S] [--json FILE]`.
 *
 * A Workstation database of `--size` MiB (default 256) is archived with the bucket (s3rver) as the
 * mirror while an application commits every 5 ms for `--seconds` (default 60). Reported:
 * - the off-site lag of every commit: from its commit to the moment the pack holding it was
 *   recorded as stored in the bucket (p50, p99, max): the data losing the host at that moment loses;
 * - then the worker and the application are killed, the host's files deleted and Redis is down, and
 *   the CLI rebuilds the catalog from the bucket (`reindex`) and restores to latest into a file
 *   (`restore --to latest --output`): wall time and peak resident memory of each process;
 * - against a plain download of the same objects (the snapshot and every pack) from the same
 *   server in the same run, written to a file and fsynced: the ratio.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { REDIS_DOWN } from '../test/helpers/cli.js';
import { sandbox, waitUntil } from '../test/helpers/env.js';
import { killAll, startWorkerProcess } from '../test/helpers/processes.js';
import { openCatalog } from '../test/helpers/producer.js';
import { S3Server } from '../test/helpers/s3.js';
import { addEventsTable, startWalWriter, stateOf } from '../test/helpers/wal-writer.js';
import { createWorkstationDb } from '../test/helpers/workstation-db.js';
import { percentile } from './lib/stats.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const { values } = parseArgs({
  options: { size: { type: 'string', default: '256' }, seconds: { type: 'string', default: '60' }, json: { type: 'string' } },
});
const sizeMb = Number(values.size);
const seconds = Number(values.seconds);

/** Runs the CLI under /usr/bin/time: exit code, wall seconds, peak resident KiB. */
function cli(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; seconds: number; maxRssMiB: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      '/usr/bin/time',
      ['-f', 'TIME %e %M', process.execPath, path.join(ROOT, 'bin/workstation-backup.js'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: '/tmp', ...env }, maxBuffer: 64 << 20, timeout: 3_600_000 },
      (err, stdout, stderr) => {
        const m = /TIME ([\d.]+) (\d+)/.exec(stderr);
        if (!m) throw new Error(`no timing from /usr/bin/time: ${stderr.slice(-2000)}`);
        resolve({ code: err ? 1 : 0, seconds: Number(m[1]), maxRssMiB: Math.round(Number(m[2]) / 1024), stdout });
      },
    );
  });
}

async function main(): Promise<void> {
  const s3 = await S3Server.start();
  const box = sandbox('bench-bucket-restore', { WAL_ARCHIVE_ENABLED: 'true', ...s3.env('bench') });
  try {
    const db = box.config.databasePath;
    createWorkstationDb(db, { sizeMb });
    addEventsTable(db);
    const worker = await startWorkerProcess(box.env);
    const catalog = openCatalog(box.config);
    const generation = await waitUntil(
      'the snapshot in the bucket',
      () => {
        const g = catalog.wal.openGeneration();
        const ok = g?.snapshot_backup_id && catalog.copies('mirror').some((c) => c.backup_id === g.snapshot_backup_id && c.status === 'ok');
        return ok ? g : undefined;
      },
      600_000,
    );
    const writer = await startWalWriter(db, { everyMs: 5 });
    await new Promise((r) => setTimeout(r, seconds * 1_000));

    // Every commit: when it was written, and when the pack holding it was recorded as stored.
    const segments = catalog.wal.segments(generation.id);
    const packs = catalog.walBucket.packs(generation.id);
    const events = new Database(db, { readonly: true }).prepare('SELECT n, at FROM events ORDER BY n').all() as { n: number; at: string }[];
    const lags: number[] = [];
    let si = 0;
    for (const e of events) {
      while (si < segments.length && segments[si]!.read_at < e.at) si++;
      const s = segments[si];
      const pack = s && packs.find((p) => p.first_seq <= s.seq && s.seq <= p.last_seq);
      if (pack) lags.push(Date.parse(pack.created_at) - Date.parse(e.at));
    }

    await Promise.all([writer.kill(), worker.kill()]);
    await new Promise((r) => setTimeout(r, 500));
    const objects = [...packs.map((p) => `bench/wal/${p.name}`)];
    const snapshot = catalog.getBackup(generation.snapshot_backup_id!)!;
    objects.push(`bench/${path.basename(snapshot.file_path)}`);
    catalog.close();
    await killAll();

    // The host is gone.
    fs.rmSync(box.config.backupDir, { recursive: true, force: true });
    for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
    const env = { ...box.env, REDIS_URL: REDIS_DOWN };
    const reindex = await cli(env, 'reindex', '--json');
    const output = path.join(box.dir, 'restored.db');
    const restore = await cli(env, 'restore', '--to', 'latest', '--output', output, '--json');
    if (reindex.code || restore.code) throw new Error(`the restore failed: ${restore.stdout}`);
    const restored = stateOf(output);

    // The same objects, downloaded plainly from the same server, to a file, fsynced.
    const started = Date.now();
    let bytes = 0;
    const plain = path.join(box.dir, 'plain.bin');
    for (const key of objects) {
      const body = (await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))).Body as Readable;
      body.on('data', (c: Buffer) => (bytes += c.length));
      await pipeline(body, fs.createWriteStream(plain, { flags: 'a' }));
    }
    const fd = fs.openSync(plain, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const downloadSeconds = (Date.now() - started) / 1_000;

    const result = {
      sizeMiB: sizeMb,
      seconds,
      commits: events.length,
      restoredEvents: restored.events.max,
      integrity: restored.integrity,
      offsiteLagMs: { p50: percentile(lags, 50), p99: percentile(lags, 99), max: Math.max(...lags) },
      objects: objects.length,
      bytesMiB: Math.round(bytes / 2 ** 20),
      reindex: { seconds: reindex.seconds, maxRssMiB: reindex.maxRssMiB },
      restore: { seconds: restore.seconds, maxRssMiB: restore.maxRssMiB },
      plainDownloadSeconds: downloadSeconds,
      ratio: Number(((reindex.seconds + restore.seconds) / downloadSeconds).toFixed(2)),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (values.json) fs.writeFileSync(values.json, JSON.stringify(result, null, 2));
  } finally {
    await killAll();
    await box.cleanup();
    await s3.cleanup();
  }
}

await main();
