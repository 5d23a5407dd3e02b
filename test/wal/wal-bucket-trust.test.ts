/**
 * A bucket is written by whoever holds its credentials: what the WAL archive reads back from it
 * must be its own. A real worker archives a database with an encryption key into the bucket; then
 * forged, altered, renamed and foreign (another archive's, same key) objects are put beside its
 * objects, and a host with nothing but the configuration rebuilds its catalog and restores: every
 * such object is refused by name, and the restore is the genuine archive's latest moment.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalSegmentRow } from '../../src/shared/catalog/catalog-schema.js';
import { keyringOf } from '../../src/shared/codec/encryption.js';
import { archiverState } from '../../src/shared/wal/archiver-state.js';
import { generationManifest, packHeader, packName, packPrefix } from '../../src/shared/wal/bucket-format.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, waitUntil } from '../helpers/env.js';
import { S3Server } from '../helpers/s3.js';
import { BALANCE_TOTAL, archivingUnderWay, startWalWriter, stateOf } from '../helpers/wal-writer.js';
import { startWalStack, stopWalStack, type WalStack } from '../helpers/wal-stack.js';

const PREFIX = 'trusted';
const KEY = randomBytes(32).toString('base64');

let s3: S3Server;
let stack: WalStack;
let segments: WalSegmentRow[];
let lastN: number;

beforeAll(async () => {
  s3 = await S3Server.start();
  stack = await startWalStack('wal-bucket-trust', 500, { ...s3.env(PREFIX), BACKUP_ENCRYPTION_KEY: KEY, WAL_MIRROR_INTERVAL: '500' });
  const writer = await startWalWriter(stack.box.config.databasePath, { everyMs: 10 });
  const generation = await archivingUnderWay(stack.catalog, { segments: 4 });
  await writer.stop();
  lastN = writer.lastN();
  // A sync that completed this long after the writer stopped began after its last commit.
  const stoppedAt = new Date(Date.now() + 300).toISOString();
  segments = await waitUntil(
    'a sync after the writer stopped (every commit stored), every segment and the snapshot in the bucket',
    () => {
      const all = stack.catalog.wal.segments(generation.id);
      const synced = (archiverState(stack.catalog)?.lastSyncAt ?? '') > stoppedAt;
      const snapshot = stack.catalog.copies('mirror').some((c) => c.backup_id === generation.snapshot_backup_id && c.status === 'ok');
      return synced && snapshot && all.every((s) => s.mirrored === 1) ? all : undefined;
    },
    30_000,
  );
  await stack.worker.stop();
}, 120_000);

afterAll(async () => {
  await stopWalStack(stack ?? {});
  await s3?.cleanup();
});

describe('objects in the bucket that are not the archive’s own', () => {
  it('are refused by name on a bare host, and the restore is the genuine latest', async () => {
    const ring = keyringOf(stack.box.config);
    const generation = stack.catalog.wal.generation(segments[0]!.generation_id)!;
    const wal = (name: string) => `${PREFIX}/wal/${name}`;
    const last = segments.at(-1)!;
    const next = last.seq + 1;
    const genuine = stack.catalog.walBucket.packs(generation.id)[0]!;
    const genuineBytes = await s3.bytes(wal(genuine.name));

    // Forged: bytes that are no pack, under the name of the next one.
    const forged = packName(generation.id, next, next);
    await s3.overwrite(wal(forged), randomBytes(2_000));
    // Renamed: a genuine pack copied under a name that claims other segments.
    const renamed = packName(generation.id, next + 1, next + 1 + genuine.last_seq - genuine.first_seq);
    await s3.overwrite(wal(renamed), genuineBytes);
    // Altered: a genuine pack with one byte of its header changed (a read time), under its own name.
    const altered = Buffer.from(genuineBytes);
    const at = altered.indexOf(Buffer.from('"readAt":"')) + 12;
    altered[at] = altered[at] === 0x31 ? 0x32 : 0x31;
    const alteredName = packName(generation.id, next + 50, next + 50 + genuine.last_seq - genuine.first_seq);
    await s3.overwrite(wal(alteredName), altered);
    // Foreign: another archive's objects, MAC'd with the same key: a whole generation, and a pack that
    // would continue ours (its header made from our own rows).
    const foreignPack = packName(generation.id, next + 100, next + 100);
    const foreignRow = { ...last, seq: next + 100 };
    await s3.overwrite(wal(foreignPack), packPrefix(packHeader(generation.id, [foreignRow], 'another-archive', ring)));
    const foreignGeneration = `generation-${String(generation.id + 7).padStart(8, '0')}.json`;
    await s3.overwrite(
      wal(foreignGeneration),
      JSON.stringify(generationManifest({ ...generation, id: generation.id + 7 }, undefined, 'another-archive', ring)),
    );
    // Unsigned: a description without a MAC, while a key is configured.
    const unsigned = `generation-${String(generation.id + 8).padStart(8, '0')}.json`;
    const { mac: _mac, ...bare } = generationManifest({ ...generation, id: generation.id + 8 }, undefined, 'x', ring);
    await s3.overwrite(wal(unsigned), JSON.stringify(bare));

    // Too large to be a description: not read into memory.
    const huge = `generation-${String(generation.id + 9).padStart(8, '0')}.json`;
    await s3.overwrite(wal(huge), Buffer.alloc(200_000, 0x20));

    // A new host: nothing but the configuration.
    const bare_ = sandbox('wal-bucket-trust-new', { ...s3.env(PREFIX), BACKUP_ENCRYPTION_KEY: KEY, REDIS_URL: REDIS_DOWN });
    try {
      const env = bare_.env;
      const reindex = await runCli(env, 'reindex', '--json');
      expect(reindex.code, reindex.stdout + reindex.stderr).toBe(0);
      const report = reindex.json.wal as { generations: number[]; refused: { name: string; reason: string }[]; segments: number };
      expect(report.generations).toContain(generation.id);
      expect(report.segments).toBe(segments.length);
      const reasonOf = (name: string) => report.refused.find((r) => r.name === name || r.name.endsWith(name))?.reason;
      expect(reasonOf(forged), JSON.stringify(report.refused)).toMatch(/not a WAL pack/);
      expect(reasonOf(renamed)).toMatch(/not what its name says/);
      expect(reasonOf(alteredName)).toMatch(/MAC does not match/);
      expect(reasonOf(foreignPack)).toMatch(/another archive/);
      expect(reasonOf(foreignGeneration)).toMatch(/another archive/);
      expect(reasonOf(unsigned)).toMatch(/no MAC/);
      expect(reasonOf(huge)).toMatch(/too large for a generation description/);

      const restore = await runCli(env, 'restore', '--to', 'latest', '--yes', '--json');
      expect(restore.code, restore.stdout + restore.stderr).toBe(0);
      expect(restore.json.wal.segmentsApplied).toBe(segments.length);
      const state = stateOf(bare_.config.databasePath);
      expect(state).toMatchObject({ integrity: 'ok', balanceSum: BALANCE_TOTAL, events: { contiguous: true, max: lastN } });
      expect(fs.existsSync(path.join(bare_.config.backupDir, 'wal'))).toBe(false);
    } finally {
      await bare_.cleanup();
    }
  });
});
