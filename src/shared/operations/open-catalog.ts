import fs from 'node:fs';
import { Catalog } from '../catalog/catalog.js';
import type { Config } from '../runtime/config.js';
import type { Logger } from '../runtime/logger.js';
import { rebuildCatalog, type ReindexReport } from './reindex.js';

/**
 * Opens the catalog for a process that is starting. When the file does not exist (lost with a
 * disk, deleted by hand), it is rebuilt from the manifests before anything else uses it.
 */
export async function openCatalog(config: Config, log: Logger): Promise<{ catalog: Catalog; rebuilt?: ReindexReport }> {
  const open = () => new Catalog(config.catalogPath, { busyTimeout: config.catalogBusyTimeout });
  if (fs.existsSync(config.catalogPath)) return { catalog: open() };
  log.info({ catalog: config.catalogPath }, 'no catalog yet: building it from the manifests of any backups present');
  const rebuilt = await rebuildCatalog(config, log);
  return { catalog: open(), rebuilt };
}
