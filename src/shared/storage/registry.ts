import { fileURLToPath } from 'node:url';
import type { Config } from '../runtime/config.js';
import { LocalDirStorage } from './local-dir.js';
import { S3Storage } from './s3.js';
import { StorageError, type BackupStorage, type StorageRole } from './storage.js';

type Opener = (role: StorageRole, url: string, config: Config) => BackupStorage;

/**
 * Storage targets by URL scheme. A new backend is one file in this folder implementing
 * `BackupStorage`, and one line here.
 */
const OPENERS: Record<string, Opener> = {
  'file:': (role, url) => new LocalDirStorage(role, fileURLToPath(url)),
  's3:': (role, url, config) =>
    new S3Storage(role, url, {
      region: config.s3.region,
      endpoint: config.s3.endpoint,
      forcePathStyle: config.s3.forcePathStyle,
      timeoutMs: config.mirrorTimeout,
    }),
};

/** The target a URL names (`file:///dir`, `s3://bucket/prefix`). */
export function openStorage(role: StorageRole, url: string, config: Config): BackupStorage {
  const scheme = /^[a-z0-9+.-]+:/i.exec(url)?.[0].toLowerCase() ?? '';
  const open = OPENERS[scheme];
  if (!open) throw new StorageError(`no storage backend for ${JSON.stringify(url)}: expected ${Object.keys(OPENERS).join('// or ')}//…`);
  return open(role, url, config);
}

export interface Stores {
  /** BACKUP_DIR: always a directory, since SQLite writes the snapshot there in place. */
  primary: LocalDirStorage;
  mirror: BackupStorage | undefined;
}

const made = new WeakMap<Config, Stores>();

/**
 * The storage targets of a configuration, made once per process (an S3 target keeps its client
 * and its connections).
 */
export function storesOf(config: Config): Stores {
  let stores = made.get(config);
  if (!stores) {
    stores = {
      primary: new LocalDirStorage('primary', config.backupDir),
      mirror: config.mirrorUrl ? openStorage('mirror', config.mirrorUrl, config) : undefined,
    };
    made.set(config, stores);
  }
  return stores;
}
