import path from 'node:path';
import type { Readable } from 'node:stream';

/** `primary` is BACKUP_DIR; `mirror` is the off-site copy (BACKUP_MIRROR_DIR or BACKUP_MIRROR_URL). */
export type StorageRole = 'primary' | 'mirror';

/** Every call can be cut short: a cancelled job or a shutdown aborts the request in flight. */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * Where backup files, their manifests (and, later, WAL segments) are kept, addressed by name.
 * Pipelines talk to this and not to directories or SDKs: a target is a directory
 * (`local-dir.ts`) or an S3-compatible bucket (`s3.ts`), made from a URL by `registry.ts`.
 * Names are plain file names (`workstation-backup-….db.zst`, `.….manifest.json`), the same on
 * every target.
 */
export interface BackupStorage {
  readonly role: StorageRole;
  /** For messages and `/health`: a directory or a URL, never a secret. */
  readonly location: string;
  /**
   * Stores a finished local file under `name` and checks the stored copy's SHA-256 against
   * `sha256`: what the target holds, not what was sent. An existing object with the same
   * checksum counts as done; a different one is an error. A copy that fails leaves no object.
   */
  put(localFile: string, name: string, sha256: string, opts?: CallOptions): Promise<void>;
  /**
   * Stores a local file under a name never used before, in as few requests as the target allows
   * (one PUT for a file of one part, its SHA-256 checked by the server); otherwise as `put`.
   * For objects written once per interval, where three requests a copy would be the cost.
   */
  putNew?(localFile: string, name: string, sha256: string, opts?: CallOptions): Promise<void>;
  /** Small text objects (manifests); replaced atomically. */
  putText(name: string, text: string, opts?: CallOptions): Promise<void>;
  /** A small text object, or undefined when there is none. */
  getText(name: string, opts?: CallOptions): Promise<string | undefined>;
  /** The object's bytes as a stream. */
  read(name: string, opts?: CallOptions): Promise<Readable>;
  /**
   * Bytes `start` to `end` (inclusive) of the object, fewer when it ends before `end`, in one
   * request (a ranged GET on a bucket), and the object's size. For the head of a large object.
   */
  readRange?(name: string, start: number, end: number, opts?: CallOptions): Promise<{ bytes: Buffer; size: number }>;
  stat(name: string, opts?: CallOptions): Promise<{ size: number } | null>;
  /** SHA-256 (hex) of the stored bytes, read back. */
  sha256(name: string, opts?: CallOptions): Promise<string>;
  /** Deletes the object; one that is not there is not an error. */
  remove(name: string, opts?: CallOptions): Promise<void>;
  /** Every name on the target. Costly on a bucket: only to rebuild or reconcile, never per backup. */
  list(opts?: CallOptions): Promise<string[]>;
  /** A local path for `name` when the target is a filesystem (SQLite can open it in place). */
  localPath(name: string): string | undefined;
  /** Whether the target can be used now, and why not, in words a person can act on. */
  probe(opts?: CallOptions): Promise<{ ok: boolean; detail: string }>;
}

export class StorageError extends Error {
  override name = 'StorageError';
}

/** A name that cannot point anywhere else: no separators, not `.` or `..`. */
export function checkName(name: string): string {
  if (!name || name.includes('/') || name.includes('\\') || name === '.' || name === '..' || name.includes('\0'))
    throw new StorageError(`invalid object name ${JSON.stringify(name)}`);
  return name;
}

/** A backup's name on every target: its file name. The catalog's `file_path` is where it sits in BACKUP_DIR. */
export const nameOf = (backup: { file_path: string }): string => path.basename(backup.file_path);
