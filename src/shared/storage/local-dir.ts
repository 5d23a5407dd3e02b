import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { codeOf } from '../domain/errors.js';
import { sha256File } from '../codec/checksum.js';
import { ensurePrivateDir, fsyncPath, removeQuietly, tempPath } from '../runtime/files.js';
import { checkName, StorageError, type BackupStorage, type CallOptions, type StorageRole } from './storage.js';

const aborted = (opts?: CallOptions) => opts?.signal?.throwIfAborted();

/**
 * A directory: BACKUP_DIR, or another disk or network mount for the mirror. Writes go to a temp
 * file, are fsynced, read back and linked to their name (never replacing a file), and the
 * directory is synced, so a name that exists always holds complete, checked bytes.
 */
export class LocalDirStorage implements BackupStorage {
  constructor(
    readonly role: StorageRole,
    readonly dir: string,
  ) {}

  get location(): string {
    return this.dir;
  }

  private pathOf(name: string): string {
    return path.join(this.dir, checkName(name));
  }

  localPath(name: string): string {
    return this.pathOf(name);
  }

  async put(localFile: string, name: string, sha256: string, opts?: CallOptions): Promise<void> {
    const target = this.pathOf(name);
    aborted(opts);
    await ensurePrivateDir(this.dir);
    if (await this.stat(name)) {
      if ((await sha256File(target)) === sha256) return;
      throw new StorageError(`${target} already exists with different contents`);
    }
    const temp = tempPath(this.dir, 'put');
    try {
      await pipeline(
        createReadStream(localFile, { highWaterMark: 1 << 20 }),
        createWriteStream(temp, { mode: 0o600 }),
        ...(opts?.signal ? [{ signal: opts.signal }] : []),
      );
      await fsyncPath(temp);
      // Read back what the target disk holds, not what was handed to it.
      const stored = await sha256File(temp);
      if (stored !== sha256) throw new StorageError(`the copy in ${this.dir} has SHA-256 ${stored}, expected ${sha256}`);
      aborted(opts);
      try {
        await fs.link(temp, target);
      } catch (err) {
        if (codeOf(err) !== 'EEXIST') throw err;
        if ((await sha256File(target)) !== sha256) throw new StorageError(`${target} already exists with different contents`);
      }
      await fsyncPath(this.dir);
    } finally {
      await removeQuietly(temp);
    }
  }

  /**
   * Gives a finished file already inside this directory its name, without copying and without
   * replacing another file: a hard link fails when the name is taken, and then `-1`, `-2`… is
   * appended to `base`. The file and the directory are synced so the name survives a power cut.
   * Returns the name given. This is how a backup built in BACKUP_DIR is published.
   */
  async adopt(temp: string, base: string, ext: string): Promise<string> {
    if (path.dirname(path.resolve(temp)) !== path.resolve(this.dir)) throw new StorageError(`${temp} is not inside ${this.dir}`);
    await fs.chmod(temp, 0o600);
    await fsyncPath(temp);
    for (let n = 0; ; n++) {
      const name = `${base}${n ? `-${n}` : ''}${ext}`;
      try {
        await fs.link(temp, this.pathOf(name));
      } catch (err) {
        if (codeOf(err) === 'EEXIST') continue;
        throw err;
      }
      await fs.unlink(temp);
      await fsyncPath(this.dir);
      return name;
    }
  }

  async putText(name: string, text: string, opts?: CallOptions): Promise<void> {
    const target = this.pathOf(name);
    aborted(opts);
    await ensurePrivateDir(this.dir);
    const temp = tempPath(this.dir, 'text');
    try {
      await fs.writeFile(temp, text, { mode: 0o600, signal: opts?.signal });
      await fsyncPath(temp);
      await fs.rename(temp, target);
      await fsyncPath(this.dir);
    } finally {
      await removeQuietly(temp);
    }
  }

  async getText(name: string, opts?: CallOptions): Promise<string | undefined> {
    try {
      return await fs.readFile(this.pathOf(name), { encoding: 'utf8', signal: opts?.signal });
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(name: string, opts?: CallOptions): Promise<Readable> {
    aborted(opts);
    const file = this.pathOf(name);
    // Open first, so a missing file rejects here rather than as a stream error later.
    const handle = await fs.open(file, 'r');
    return handle.createReadStream({ highWaterMark: 1 << 20, signal: opts?.signal });
  }

  async readRange(name: string, start: number, end: number, opts?: CallOptions): Promise<{ bytes: Buffer; size: number }> {
    aborted(opts);
    const handle = await fs.open(this.pathOf(name), 'r');
    try {
      const size = (await handle.stat()).size;
      const bytes = Buffer.alloc(Math.max(0, Math.min(end + 1, size) - start));
      let filled = 0;
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, start + filled);
        if (!bytesRead) break;
        filled += bytesRead;
      }
      return { bytes: bytes.subarray(0, filled), size };
    } finally {
      await handle.close();
    }
  }

  async stat(name: string, opts?: CallOptions): Promise<{ size: number } | null> {
    aborted(opts);
    const s = await fs.stat(this.pathOf(name)).catch(() => null);
    return s?.isFile() ? { size: s.size } : null;
  }

  sha256(name: string, opts?: CallOptions): Promise<string> {
    aborted(opts);
    return sha256File(this.pathOf(name));
  }

  async remove(name: string, opts?: CallOptions): Promise<void> {
    aborted(opts);
    await fs.rm(this.pathOf(name), { force: true });
  }

  async list(opts?: CallOptions): Promise<string[]> {
    aborted(opts);
    try {
      return (await fs.readdir(this.dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return [];
      throw err;
    }
  }

  async probe(opts?: CallOptions): Promise<{ ok: boolean; detail: string }> {
    try {
      aborted(opts);
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
