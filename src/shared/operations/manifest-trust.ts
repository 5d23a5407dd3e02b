import { BACKUP_FILE_PATTERN } from '../codec/codec.js';
import type { Keyring } from '../codec/encryption.js';
import { messageOf } from '../domain/errors.js';
import { backupNameOfManifest, manifestAuthenticity, parseManifest, type Manifest } from '../catalog/manifest.js';
import type { BackupStorage } from '../storage/storage.js';

/**
 * What a catalog rebuild may believe of a manifest on disk. Anyone able to write into BACKUP_DIR
 * or the mirror can put a manifest there, and a row made from it decides what retention deletes
 * and what a restore trusts: a manifest must name a backup file, carry a plausible id and, with
 * encryption on, a MAC made with a configured key.
 */

/** A manifest is a few hundred bytes: anything far larger is not one, and is not read into memory. */
const MAX_MANIFEST_BYTES = 64 * 1024;

/**
 * Ids between two kept backups belong to failed backups (each takes an id) and to backups
 * retention removed. A year of hourly runs that all failed is under this; an id further from
 * every other manifest's did not come from this catalog.
 */
const MAX_ID_GAP = 10_000;

export interface Candidate {
  manifest: Manifest;
  /** Where it was read, for messages. */
  location: string;
  /** Its MAC checked out against a configured key. */
  authenticated: boolean;
}

export interface Scanned {
  /** Every file name in the store. */
  names: Set<string>;
  /** Manifests that may be imported, as far as the manifest alone can tell. */
  candidates: Candidate[];
  unreadable: { name: string; error: string }[];
  refused: Refusal[];
}

export interface Refusal {
  name: string;
  id: number;
  reason: string;
}

/**
 * Reads every manifest in one store. Throws only when the store cannot be listed; a manifest that
 * cannot be read, does not parse or is not trusted goes to the report and the scan goes on.
 */
export async function scanManifests(store: BackupStorage, ring: Keyring, { acceptUnsigned = false } = {}): Promise<Scanned> {
  const names = new Set(await store.list());
  const out: Scanned = { names, candidates: [], unreadable: [], refused: [] };
  for (const name of names) {
    const fileName = backupNameOfManifest(name);
    if (!fileName) continue;
    const location = `${store.location}/${name}`;
    let text: string;
    let manifest: Manifest;
    try {
      const size = (await store.stat(name))?.size ?? 0;
      if (size > MAX_MANIFEST_BYTES) throw new Error(`${size} bytes: too large for a manifest`);
      text = (await store.getText(name)) ?? '';
      manifest = parseManifest(text);
      if (manifest.fileName !== fileName) throw new Error(`names ${manifest.fileName}, not ${fileName}`);
    } catch (err) {
      out.unreadable.push({ name: location, error: messageOf(err).slice(0, 300) });
      continue;
    }
    const refuse = (reason: string) => out.refused.push({ name: location, id: manifest.id, reason });
    // Retention deletes the file a row names: a row may only ever name a backup file.
    if (!BACKUP_FILE_PATTERN.test(manifest.fileName)) {
      refuse(`it names ${JSON.stringify(manifest.fileName)}, which is not a backup file name (workstation-backup-….db[.gz|.zst][.enc])`);
      continue;
    }
    // The operator vouches for manifests without a MAC (written before encryption was turned on,
    // or by a version that did not sign them); they still face every other check.
    const waived = acceptUnsigned && !manifest.mac;
    const hint = manifest.mac ? '' : '; if it predates signed manifests, run: workstation-backup reindex --accept-unsigned';
    if (ring.write && !manifest.encryption && !waived) {
      refuse(`it is not encrypted while BACKUP_ENCRYPTION_KEY is set: manifests written with a key are encrypted and carry a MAC${hint}`);
      continue;
    }
    const auth = ring.write || manifest.mac ? manifestAuthenticity(text, ring) : undefined;
    // Without a write key, a MAC under a key that is not configured cannot be checked: such a
    // manifest is treated like one without a MAC. A MAC that can be checked and fails never passes.
    const checkable = Boolean(ring.write || (manifest.mac && ring.read.has(manifest.mac.keyId)));
    if (auth && !auth.ok && checkable && !waived) {
      refuse(`${auth.reason}${hint}`);
      continue;
    }
    out.candidates.push({ manifest, location, authenticated: auth?.ok === true });
  }
  return out;
}

/**
 * Ids that no manifest of this catalog would carry. With a catalog that has handed out ids, an
 * id may exceed the highest of them only by the number of manifests (backups whose row a power
 * cut lost after their manifest was written). With a new catalog, the manifests' ids are grouped
 * where they lie within MAX_ID_GAP (+ their count) of each other; ids outside the largest group
 * (the lowest one on a tie) are refused.
 */
export function implausibleIds(ids: number[], ceiling: number): Map<number, string> {
  const n = ids.length;
  const out = new Map<number, string>();
  if (ceiling > 0) {
    for (const id of ids) {
      if (id > ceiling + n)
        out.set(id, `id ${id} is above the highest id the catalog has handed out (${ceiling}) by more than the number of manifests (${n})`);
    }
    return out;
  }
  const clusters: number[][] = [];
  for (const id of [...ids].sort((a, b) => a - b)) {
    const last = clusters.at(-1);
    if (last && id - last.at(-1)! <= MAX_ID_GAP + n) last.push(id);
    else clusters.push([id]);
  }
  const main = clusters.reduce((best, c) => (c.length > best.length ? c : best), clusters[0] ?? []);
  for (const c of clusters) {
    if (c === main) continue;
    for (const id of c)
      out.set(id, `id ${id} lies more than ${MAX_ID_GAP + n} away from the other manifests' ids (${main[0]}…${main.at(-1)})`);
  }
  return out;
}

/** Fields in which two manifests of one backup file differ (the mirror's is a copy of the primary's). */
export function differingFields(a: Manifest, b: Manifest): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof Manifest)[]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
