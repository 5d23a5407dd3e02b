import { Catalog } from '../../src/shared/catalog/catalog.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { createLogger } from '../../src/shared/observability/logger.js';
import { startProducer, type RunningProducer } from '../../src/producer/server.js';
import { TEST_TOKEN } from './env.js';

export const auth = { Authorization: `Bearer ${TEST_TOKEN}` };

/** The real producer, listening on a random local port. */
export async function startTestProducer(config: Config): Promise<RunningProducer> {
  return startProducer(config, createLogger(config, 'producer'));
}

export function openCatalog(config: Config): Catalog {
  return new Catalog(config.catalogPath);
}
