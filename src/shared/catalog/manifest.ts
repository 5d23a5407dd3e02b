import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { BackupRow, ImportedBackup } from './catalog.js';
import { BACKUP_TYPES, COMPRESSION_MODES } from '../domain/backup-types.js';
import { CHUNK_BYTES, ENCRYPTION_ALGORITHM, openJson, sealJson, type Key, type Keyring, type Sealed } from '../codec/encryption.js';

/**
 * A small JSON file next to each backup that describes it without the catalog: enough to rebuild
 * the catalog (`reindex`) and to restore by hand. With encryption on, the database details (its
 * source path, SQLite header values) are sealed with the backup's key; what stays readable is only
 * what a rebuild needs.
 */
export const MANIFEST_FORMAT = 'workstation-backup-manifest';

/** `.<backup file name>.manifest.json`: hidden, so `ls backups/` still shows the runbook's list. */
export function manifestName(fileName: string): string {
  return `.${fileName}.manifest.json`;
}

export function backupNameOfManifest(name: string): string | undefined {
  const m = /^\.(.+)\.manifest\.json$/.exec(name);
  return m?.[1];
}

const databaseSchema = z.object({
  sourcePath: z.string(),
  pageSize: z.number().int(),
  userVersion: z.number().int(),
  sizeBytes: z.number().int().nonnegative(),
});
export type ManifestDatabase = z.infer<typeof databaseSchema>;

const sealedSchema = z.object({ keyId: z.string(), iv: z.string(), data: z.string(), tag: z.string() });

const MAC_ALGORITHM = 'hmac-sha256';
const macSchema = z.object({ algorithm: z.literal(MAC_ALGORITHM), keyId: z.string(), value: z.string().regex(/^[0-9a-f]{64}$/) });

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(1),
  id: z.number().int().positive(),
  type: z.enum(BACKUP_TYPES),
  jobId: z.string().nullable(),
  startedAt: z.string(),
  completedAt: z.string(),
  fileName: z.string().min(1),
  fileSize: z.number().int().nonnegative(),
  checksum: z.object({ algorithm: z.literal('sha256'), value: z.string().regex(/^[0-9a-f]{64}$/) }),
  compression: z.enum(COMPRESSION_MODES),
  encryption: z
    .object({ algorithm: z.literal(ENCRYPTION_ALGORITHM), keyId: z.string(), chunkBytes: z.number().int().positive() })
    .nullable(),
  database: databaseSchema.nullable(),
  sealed: sealedSchema.optional(),
  /** With encryption on: who wrote the manifest, so a rebuild cannot be fed forged rows (see `manifestAuthenticity`). */
  mac: macSchema.optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export function buildManifest(row: BackupRow, database: ManifestDatabase, key: Key | undefined): Manifest {
  const encrypted = Boolean(row.encryption && key);
  const body: Manifest = {
    format: MANIFEST_FORMAT,
    version: 1,
    id: row.id,
    type: row.backup_type,
    jobId: row.job_id,
    startedAt: row.started_at,
    completedAt: row.completed_at!,
    fileName: row.file_path.split('/').pop()!,
    fileSize: row.file_size_bytes!,
    checksum: { algorithm: 'sha256', value: row.checksum! },
    compression: row.compression ?? 'none',
    encryption: encrypted ? { algorithm: ENCRYPTION_ALGORITHM, keyId: key!.id, chunkBytes: CHUNK_BYTES } : null,
    database: encrypted ? null : database,
    ...(encrypted ? { sealed: sealJson(key!, database) } : {}),
  };
  return encrypted ? { ...body, mac: { algorithm: MAC_ALGORITHM, keyId: key!.id, value: macOf(key!, body) } } : body;
}

/**
 * JSON with every object's keys sorted: the same fields give the same bytes whatever order a
 * writer put them in.
 */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * HMAC-SHA256 over every field but the MAC itself, under a key derived from the encryption key
 * (HKDF, its own label): the MAC key is never the key that encrypts backups, and a manifest
 * cannot be moved to another id, file or checksum without the MAC failing.
 */
function macOf(key: Key, fields: Record<string, unknown>, kind = 'manifest'): string {
  const { mac: _mac, ...rest } = fields;
  const macKey = Buffer.from(hkdfSync('sha256', key.bytes, Buffer.from('workstation-backup'), Buffer.from(`${kind} mac v1`), 32));
  return createHmac('sha256', macKey).update(`workstation-backup ${kind} v1\0`).update(canonical(rest)).digest('hex');
}

/**
 * `fields` with a MAC of their own kind (each kind its own MAC key, so one kind's object never
 * passes for another's): how the WAL archive's objects in the bucket are signed.
 */
export function withMac<T extends Record<string, unknown>>(key: Key, kind: string, fields: T): T & { mac: z.infer<typeof macSchema> } {
  return { ...fields, mac: { algorithm: MAC_ALGORITHM, keyId: key.id, value: macOf(key, fields, kind) } };
}

export type Authenticity = { ok: true; keyId: string } | { ok: false; reason: string };

/**
 * Whether a manifest was written by a holder of one of the configured keys. Computed over the
 * JSON as read (not the parsed fields), so a field added by hand fails it too.
 */
export function manifestAuthenticity(text: string, ring: Keyring, kind = 'manifest'): Authenticity {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const mac = macSchema.safeParse(raw?.mac);
  if (!mac.success) return { ok: false, reason: 'it carries no MAC' };
  const key = ring.read.get(mac.data.keyId);
  if (!key) return { ok: false, reason: `its MAC is under key ${mac.data.keyId}, which is not configured` };
  const expected = Buffer.from(macOf(key, raw, kind), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(mac.data.value, 'hex'))) {
    return { ok: false, reason: 'its MAC does not match its contents: it was altered or forged' };
  }
  return { ok: true, keyId: key.id };
}

export function parseManifest(text: string): Manifest {
  return manifestSchema.parse(JSON.parse(text));
}

/** The database details, opening the sealed part when its key is configured. */
export function manifestDatabase(manifest: Manifest, ring: Keyring): ManifestDatabase | undefined {
  if (manifest.database) return manifest.database;
  if (!manifest.sealed) return undefined;
  const opened = databaseSchema.safeParse(openJson(ring, manifest.sealed as Sealed));
  return opened.success ? opened.data : undefined;
}

export function toImported(manifest: Manifest, filePath: string, ring: Keyring): ImportedBackup {
  const db = manifestDatabase(manifest, ring);
  return {
    id: manifest.id,
    type: manifest.type,
    filePath,
    fileSize: manifest.fileSize,
    startedAt: manifest.startedAt,
    completedAt: manifest.completedAt,
    checksum: manifest.checksum.value,
    jobId: manifest.jobId,
    compression: manifest.compression,
    encryption: manifest.encryption?.keyId ?? null,
    pageSize: db?.pageSize ?? null,
    userVersion: db?.userVersion ?? null,
    databaseSize: db?.sizeBytes ?? null,
  };
}
