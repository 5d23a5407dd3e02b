import type { Catalog } from '../catalog/catalog.js';
import type { ArchiverProgress } from './archiver.js';

/** What the running archiver last reported, for `/health`, `/metrics` and the CLI. */
export interface ArchiverState extends ArchiverProgress {
  workerId: string;
  /** When it reported. */
  at: string;
  /** Why archiving cannot run (the database is not in WAL mode), or null. */
  notWalMode: string | null;
}

const KEY = 'wal-archiver-state';

export function recordArchiverState(catalog: Catalog, state: ArchiverState): void {
  catalog.setSetting(KEY, state);
}

export function archiverState(catalog: Catalog): ArchiverState | undefined {
  return catalog.getSetting<ArchiverState>(KEY) ?? undefined;
}
