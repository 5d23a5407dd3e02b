import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { sha256File } from '../codec/checksum.js';
import type { Config } from '../runtime/config.js';
import { ensurePrivateDir, fsyncPath, removeQuietly, tempPath } from '../runtime/files.js';

/**
 * Where backup files and their manifests are kept, addressed by name. Jobs talk to this and not
 * to directories, so another kind of target (an S3-compatible bucket: put = PutObject with a
 * checksum header, read = GetObject, list = ListObjectsV2) plugs in without touching them.
 */
export interface BackupStorage {
  /** `primary` (BACKUP_DIR) or `mirror` (BACKUP_MIRROR_DIR). */
  readonly role: 'primary' | 'mirror';
  /** For messages: a directory or a URL, never a secret. */
  readonly location: string;
  /**
   * Stores a finished local file under `name` and checks the stored copy's SHA-256 against
   * `sha256`. An existing object with the same checksum counts as done; a different one is an error.
   */
  put(localFile: string, name: string, sha256: string): Promise<void>;
  /** Small text objects (manifests); replaced atomically. */
  putText(name: string, text: string): Promise<void>;
  getText(name: string): Promise<string | undefined>;
  read(name: string): Readable;
  stat(name: string): Promise<{ size: number } | null>;
  sha256(name: string): Promise<string>;
  remove(name: string): Promise<void>;
  list(): Promise<string[]>;
  /** A local path for `name` when the target is a filesystem (SQLite can open it in place). */
  localPath(name: string): string | undefined;
  /** Whether the target can be written now, and why not. */
  probe(): Promise<{ ok: boolean; detail: string }>;
}

export class StorageError extends Error {
  override name = 'StorageError';
}

/** A directory: BACKUP_DIR, or another disk or network mount for the mirror. */
export class LocalDirStorage implements BackupStorage {
  constructor(
    readonly role: 'primary' | 'mirror',
    readonly dir: string,
  ) {}

  get location(): string {
    return this.dir;
  }

  /** Names are plain file names: nothing can point outside the directory. */
  private pathOf(name: string): string {
    if (!name || name !== path.basename(name) || name === '.' || name === '..')
      throw new StorageError(`invalid object name ${JSON.stringify(name)}`);
    return path.join(this.dir, name);
  }

  localPath(name: string): string {
    return this.pathOf(name);
  }

  async put(localFile: string, name: string, sha256: string): Promise<void> {
    const target = this.pathOf(name);
    await ensurePrivateDir(this.dir);
    const existing = await this.stat(name);
    if (existing) {
      if ((await sha256File(target)) === sha256) return;
      throw new StorageError(`${target} already exists with different contents`);
    }
    const temp = tempPath(this.dir, 'put');
    try {
      await pipeline(createReadStream(localFile, { highWaterMark: 1 << 20 }), createWriteStream(temp, { mode: 0o600 }));
      await fsyncPath(temp);
      // Read back what the target disk holds, not what was handed to it.
      const stored = await sha256File(temp);
      if (stored !== sha256) throw new StorageError(`the copy in ${this.dir} has SHA-256 ${stored}, expected ${sha256}`);
      try {
        await fs.link(temp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if ((await sha256File(target)) !== sha256) throw new StorageError(`${target} already exists with different contents`);
      }
      await fsyncPath(this.dir);
    } finally {
      await removeQuietly(temp);
    }
  }

  async putText(name: string, text: string): Promise<void> {
    const target = this.pathOf(name);
    await ensurePrivateDir(this.dir);
    const temp = tempPath(this.dir, 'text');
    try {
      await fs.writeFile(temp, text, { mode: 0o600 });
      await fsyncPath(temp);
      await fs.rename(temp, target);
      await fsyncPath(this.dir);
    } finally {
      await removeQuietly(temp);
    }
  }

  async getText(name: string): Promise<string | undefined> {
    try {
      return await fs.readFile(this.pathOf(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  read(name: string): Readable {
    return createReadStream(this.pathOf(name), { highWaterMark: 1 << 20 });
  }

  async stat(name: string): Promise<{ size: number } | null> {
    const s = await fs.stat(this.pathOf(name)).catch(() => null);
    return s?.isFile() ? { size: s.size } : null;
  }

  sha256(name: string): Promise<string> {
    return sha256File(this.pathOf(name));
  }

  async remove(name: string): Promise<void> {
    await fs.rm(this.pathOf(name), { force: true });
  }

  async list(): Promise<string[]> {
    try {
      return (await fs.readdir(this.dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async probe(): Promise<{ ok: boolean; detail: string }> {
    try {
      await ensurePrivateDir(this.dir);
      const probe = tempPath(this.dir, 'probe');
      await fs.writeFile(probe, '');
      await removeQuietly(probe);
      return { ok: true, detail: 'writable' };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }
}

export interface Stores {
  primary: LocalDirStorage;
  mirror: BackupStorage | undefined;
}

/** The storage targets of a configuration. */
export function storesOf(config: Config): Stores {
  return {
    primary: new LocalDirStorage('primary', config.backupDir),
    mirror: config.mirrorDir ? new LocalDirStorage('mirror', config.mirrorDir) : undefined,
  };
}
