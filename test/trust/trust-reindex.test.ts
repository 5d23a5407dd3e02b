/**
 * What `reindex` and a starting service let into a rebuilt catalog, and what a rebuild that fails
 * half way leaves behind. Every run is a real CLI process with Redis down; the faults are real:
 * forged and altered manifests on disk, a mirror path that is a file, a catalog volume (tmpfs)
 * that fills up during the rebuild, the temp file of a rebuild that was killed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { keyId } from '../../src/shared/codec/encryption.js';
import { buildManifest, type Manifest } from '../../src/shared/catalog/manifest.js';
import { catalogIsSound } from '../../src/shared/operations/reindex.js';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { sandbox, type Sandbox } from '../helpers/env.js';
import { createWorkstationDb } from '../helpers/workstation-db.js';
import { withCatalogDb } from '../helpers/catalog-db.js';

const boxes: Sandbox[] = [];
const mounts: string[] = [];

afterAll(async () => {
  for (const m of mounts) execFileSync('umount', [m]);
  for (const b of boxes) await b.cleanup();
});

/** A sandbox with a live database; the CLI's environment has Redis down. */
function setUp(name: string, extra: Record<string, string> = {}): { box: Sandbox; env: Record<string, string>; dir: string } {
  const box = sandbox(name, extra);
  boxes.push(box);
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  return { box, env: { ...box.env, REDIS_URL: REDIS_DOWN }, dir: box.config.backupDir };
}

const manifestFile = (dir: string, fileName: string) => path.join(dir, `.${fileName}.manifest.json`);
const readManifest = (dir: string, fileName: string) => JSON.parse(fs.readFileSync(manifestFile(dir, fileName), 'utf8')) as Manifest;
function writeManifest(dir: string, m: Record<string, unknown> & { fileName: string }): void {
  fs.writeFileSync(manifestFile(dir, m.fileName), `${JSON.stringify(m, null, 2)}\n`);
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function removeCatalog(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
}

/** The catalog's backup ids, read without creating or changing anything. */
function catalogIds(file: string): number[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT id FROM backup_log ORDER BY id').all() as { id: number }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

async function backup(env: Record<string, string>): Promise<{ id: number; fileName: string; filePath: string }> {
  const r = await runCli(env, 'backup', '--json');
  expect(r.code, r.stderr).toBe(0);
  return r.json.backup;
}

/** A copy of a backup file under another backup-like name, as someone with write access could make. */
function copyAs(dir: string, from: string, name: string): void {
  fs.copyFileSync(path.join(dir, from), path.join(dir, name));
}

const refusal = (file: string, id: number, reason: RegExp) => ({
  name: expect.stringContaining(`.${file}.manifest.json`),
  id,
  reason: expect.stringMatching(reason),
});

describe('reindex imports only manifests that describe backups of this service', () => {
  it('a forged manifest naming the token file and the catalog is refused; retention then deletes neither', async () => {
    const { box, env, dir } = setUp('trust-forge', { MAX_BACKUPS: '1' });
    const first = await backup(env);
    // The token file a service without API_TOKEN generates, beside the backups.
    const token = path.join(dir, '.api-token');
    fs.writeFileSync(token, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    const tokenBytes = fs.readFileSync(token);
    const genuine = readManifest(dir, first.fileName);
    const catalogName = path.basename(box.config.catalogPath);
    writeManifest(dir, { ...genuine, id: 900000, fileName: '.api-token' });
    writeManifest(dir, { ...genuine, id: 900001, fileName: catalogName });
    const catalogBefore = sha256(box.config.catalogPath);

    const r = await runCli(env, 'reindex', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.imported).toEqual([]);
    expect(r.json.known).toEqual([first.id]);
    expect(r.json.refused).toEqual(
      expect.arrayContaining([
        refusal('.api-token', 900000, /not a backup file name/),
        refusal(catalogName, 900001, /not a backup file name/),
      ]),
    );
    expect(sha256(box.config.catalogPath)).toBe(catalogBefore);
    const human = await runCli(env, 'reindex');
    expect(human.stdout).toMatch(/Refused manifest .*\.\.api-token\.manifest\.json \(id 900000, not imported\): .*not a backup file name/);

    // Two backups with MAX_BACKUPS=1: retention deletes the oldest rows' files each time.
    const second = await backup(env);
    const third = await backup(env);
    expect(fs.readFileSync(token).equals(tokenBytes)).toBe(true);
    expect(catalogIsSound(box.config.catalogPath)).toEqual({ ok: true });
    const list = await runCli(env, 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(list.json.backups.map((b: { id: number }) => b.id)).toEqual([third.id]);
    expect(catalogIds(box.config.catalogPath)).toEqual([third.id]);
    expect(fs.existsSync(second.filePath)).toBe(false);
    expect(fs.existsSync(third.filePath)).toBe(true);
  });

  it('refuses a non-backup file name, an id two files claim, and an id far above the rest (unless --trust-ids)', async () => {
    const { box, env, dir } = setUp('trust-ids');
    const a = await backup(env);
    const b = await backup(env);
    const template = readManifest(dir, a.fileName);
    const names = {
      lookalike: 'workstation-backup-2030-01-01T00-00-00.sqlite',
      far: 'workstation-backup-2031-01-01T00-00-00.db',
      twinA: 'workstation-backup-2032-01-01T00-00-00.db',
      twinB: 'workstation-backup-2033-01-01T00-00-00.db',
    };
    for (const n of Object.values(names)) copyAs(dir, a.fileName, n);
    writeManifest(dir, { ...template, id: b.id + 1, fileName: names.lookalike });
    writeManifest(dir, { ...template, id: 900000, fileName: names.far });
    writeManifest(dir, { ...template, id: b.id + 2, fileName: names.twinA, jobId: 'twin-a' });
    writeManifest(dir, { ...template, id: b.id + 2, fileName: names.twinB, jobId: 'twin-b' });
    const expected = [
      refusal(names.lookalike, b.id + 1, /not a backup file name/),
      refusal(names.far, 900000, /above the highest id the catalog has handed out/),
      refusal(names.twinA, b.id + 2, /claimed by the manifests of/),
      refusal(names.twinB, b.id + 2, /claimed by the manifests of/),
    ];

    // Into the existing catalog: its ids so far bound what a manifest may carry.
    const inPlace = await runCli(env, 'reindex', '--json');
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect(inPlace.json.imported).toEqual([]);
    expect(inPlace.json.known).toEqual([a.id, b.id]);
    expect(inPlace.json.refused).toEqual(expect.arrayContaining(expected));
    expect(inPlace.json.refused).toHaveLength(4);

    // Into a new catalog: the other manifests' ids are the reference.
    removeCatalog(box.config.catalogPath);
    const fresh = await runCli(env, 'reindex', '--json');
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.json.imported).toEqual([a.id, b.id]);
    expect(fresh.json.refused).toEqual(
      expect.arrayContaining([...expected.filter((e) => e.id !== 900000), refusal(names.far, 900000, /lies more than \d+ away/)]),
    );
    expect(catalogIds(box.config.catalogPath)).toEqual([a.id, b.id]);

    // The operator vouches for the far id; the name and the shared id are still refused.
    const trusted = await runCli(env, 'reindex', '--trust-ids', '--json');
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(trusted.json.imported).toEqual([900000]);
    expect(trusted.json.refused).toHaveLength(3);
    expect(catalogIds(box.config.catalogPath)).toEqual([a.id, b.id, 900000]);
  });

  it('with an encryption key, refuses unencrypted, unsigned, forged and altered manifests and imports genuine ones', async () => {
    const key = randomBytes(32);
    const { box, env, dir } = setUp('trust-key', { BACKUP_ENCRYPTION_KEY: key.toString('base64') });
    const g1 = await backup(env);
    const g2 = await backup(env);
    const g3 = await backup(env);
    const genuine = readManifest(dir, g1.fileName);
    expect(genuine.mac).toMatchObject({ algorithm: 'hmac-sha256', keyId: keyId(key), value: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const saved2 = fs.readFileSync(manifestFile(dir, g2.fileName));
    const saved3 = fs.readFileSync(manifestFile(dir, g3.fileName));

    // Altered: another checksum (to pass off another file), another id.
    writeManifest(dir, { ...readManifest(dir, g2.fileName), checksum: { algorithm: 'sha256', value: 'a'.repeat(64) } });
    writeManifest(dir, { ...readManifest(dir, g3.fileName), id: g3.id + 10 });
    const names = {
      plain: 'workstation-backup-2030-01-01T00-00-00.db',
      forged: 'workstation-backup-2031-01-01T00-00-00.db.enc',
      unsigned: 'workstation-backup-2032-01-01T00-00-00.db.enc',
      otherKey: 'workstation-backup-2033-01-01T00-00-00.db.enc',
    };
    for (const n of Object.values(names)) copyAs(dir, g1.fileName, n);
    const { mac: _mac, sealed: _sealed, ...unsigned } = genuine;
    writeManifest(dir, {
      ...unsigned,
      id: g3.id + 1,
      fileName: names.plain,
      encryption: null,
      database: { sourcePath: box.config.databasePath, pageSize: 4096, userVersion: 0, sizeBytes: 1 },
    });
    writeManifest(dir, {
      ...genuine,
      id: g3.id + 2,
      fileName: names.forged,
      mac: { ...genuine.mac!, value: randomBytes(32).toString('hex') },
    });
    writeManifest(dir, { ...unsigned, sealed: genuine.sealed, id: g3.id + 3, fileName: names.unsigned });
    // Signed properly, but with a key this service does not have.
    const stranger = randomBytes(32);
    const row = new Catalog(box.config.catalogPath);
    const strangerManifest = buildManifest(
      { ...row.getBackup(g1.id)!, id: g3.id + 4, file_path: path.join(dir, names.otherKey) },
      { sourcePath: box.config.databasePath, pageSize: 4096, userVersion: 0, sizeBytes: 1 },
      { id: keyId(stranger), bytes: stranger },
    );
    row.close();
    writeManifest(dir, strangerManifest);

    removeCatalog(box.config.catalogPath);
    const r = await runCli(env, 'reindex', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.imported).toEqual([g1.id]);
    expect(r.json.refused).toEqual(
      expect.arrayContaining([
        refusal(g2.fileName, g2.id, /MAC does not match/),
        refusal(g3.fileName, g3.id + 10, /MAC does not match/),
        refusal(names.plain, g3.id + 1, /not encrypted while BACKUP_ENCRYPTION_KEY is set/),
        refusal(names.forged, g3.id + 2, /MAC does not match/),
        refusal(names.unsigned, g3.id + 3, /no MAC/),
        refusal(names.otherKey, g3.id + 4, /not configured/),
      ]),
    );
    expect(r.json.refused).toHaveLength(6);
    expect(catalogIds(box.config.catalogPath)).toEqual([g1.id]);

    // The genuine manifests put back: imported, and the backups verify.
    fs.writeFileSync(manifestFile(dir, g2.fileName), saved2);
    fs.writeFileSync(manifestFile(dir, g3.fileName), saved3);
    const again = await runCli(env, 'reindex', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.imported).toEqual([g2.id, g3.id]);
    expect(catalogIds(box.config.catalogPath)).toEqual([g1.id, g2.id, g3.id]);
    const verified = await runCli(env, 'verify', String(g3.id), '--json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.json.valid).toBe(true);

    // Manifests without a MAC (from before manifests were signed) come in when the operator says
    // so; a MAC that is there and fails never does.
    expect(again.json.refused).toEqual(expect.arrayContaining([refusal(names.unsigned, g3.id + 3, /--accept-unsigned/)]));
    const legacy = await runCli(env, 'reindex', '--accept-unsigned', '--json');
    expect(legacy.code, legacy.stderr).toBe(0);
    expect(legacy.json.imported).toEqual([g3.id + 1, g3.id + 3]);
    expect(legacy.json.refused.map((x: { id: number }) => x.id).sort()).toEqual([g3.id + 2, g3.id + 4]);
  });
});

describe('a catalog rebuilt at start-up is complete or absent, never half', () => {
  it('a mirror path that cannot be read does not stop the rebuild: the primary backups are listed', async () => {
    const { box, env } = setUp('trust-mirror', {});
    const mirrorDir = path.join(box.dir, 'mirror');
    const withMirror = { ...env, BACKUP_MIRROR_DIR: mirrorDir };
    const a = await backup(withMirror);
    const b = await backup(withMirror);
    expect(fs.readdirSync(mirrorDir)).toContain(b.fileName);

    // The mirror mount is gone and a file stands in its place.
    removeCatalog(box.config.catalogPath);
    fs.renameSync(mirrorDir, `${mirrorDir}-away`);
    fs.writeFileSync(mirrorDir, 'not a directory');
    const list = await runCli(withMirror, 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(list.json.backups.map((x: { id: number }) => x.id)).toEqual([b.id, a.id]);
    expect(list.stderr).toMatch(/ENOTDIR/);
    const r = await runCli(withMirror, 'reindex', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.known).toEqual([a.id, b.id]);
    expect(r.json.mirrorError).toMatch(new RegExp(`${mirrorDir}: .*ENOTDIR`));

    // Once the mirror is back, a rebuild reads it again.
    fs.rmSync(mirrorDir);
    fs.renameSync(`${mirrorDir}-away`, mirrorDir);
    removeCatalog(box.config.catalogPath);
    const back = await runCli(withMirror, 'reindex', '--json');
    expect(back.code, back.stderr).toBe(0);
    expect(back.json.imported).toEqual([a.id, b.id]);
    expect(back.json.mirrorError).toBeNull();
  });

  it('a rebuild that fills the disk leaves no catalog; the next start ignores a dead rebuild and rebuilds fully', async () => {
    const { box, dir } = setUp('trust-full');
    // The catalog on a volume of its own, small enough to fill up during the rebuild.
    const volume = path.join(box.dir, 'catalog-volume');
    const { env, config } = box.with({ CATALOG_PATH: path.join(volume, 'backup-catalog.db'), REDIS_URL: REDIS_DOWN });
    const catalogPath = config.catalogPath;
    // Many backups, so that the rebuild needs far more room than the catalog's volume has.
    const count = 400;
    fs.mkdirSync(dir, { recursive: true });
    for (let id = 1; id <= count; id++) {
      const fileName = `workstation-backup-2024-01-01T00-00-00-${id}.db`;
      fs.writeFileSync(path.join(dir, fileName), `backup ${id}`);
      writeManifest(dir, {
        format: 'workstation-backup-manifest',
        version: 1,
        id,
        type: 'scheduled',
        jobId: `job-${id}`,
        startedAt: '2024-01-01T00:00:00.000Z',
        completedAt: '2024-01-01T00:00:01.000Z',
        fileName,
        fileSize: `backup ${id}`.length,
        checksum: { algorithm: 'sha256', value: createHash('sha256').update(`backup ${id}`).digest('hex') },
        compression: 'none',
        encryption: null,
        database: { sourcePath: box.config.databasePath, pageSize: 4096, userVersion: 0, sizeBytes: 4096 },
      });
    }
    fs.mkdirSync(volume, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', volume]);
    mounts.push(volume);

    const full = await runCli(env, 'list', '--json');
    expect(full.code).toBe(1);
    expect(full.json.error.message).toMatch(/full/i);
    // Nothing half built stays behind: no catalog, no temp file.
    expect(fs.readdirSync(volume)).toEqual([]);

    // A rebuild killed half way (its temp file an hour old), then room again.
    execFileSync('mount', ['-o', 'remount,size=64m', volume]);
    const dead = path.join(volume, '.tmp-catalog-rebuild-4242-0123456789ab');
    new Catalog(dead).close();
    withCatalogDb(dead, (db) =>
      db
        .prepare(`INSERT INTO backup_log (id, backup_type, file_path, started_at, status) VALUES (7, 'manual', '/x', 'y', 'completed')`)
        .run(),
    );
    const hourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(dead, hourAgo, hourAgo);

    const list = await runCli(env, 'list', '--json', '--limit', '3');
    expect(list.code, list.stderr).toBe(0);
    expect(list.json.total).toBe(count);
    expect(catalogIds(catalogPath)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(fs.readdirSync(volume).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});
