import { Catalog } from '../../src/shared/catalog/catalog.js';
import type { Config } from '../../src/shared/runtime/config.js';
import { startProducer, type RunningProducer } from '../../src/producer/server.js';
import { TEST_TOKEN } from './env.js';
import { testLogger } from './log.js';

export const auth = { Authorization: `Bearer ${TEST_TOKEN}` };

/** The real producer, listening on a random local port. */
export async function startTestProducer(config: Config): Promise<RunningProducer> {
  return startProducer(config, testLogger(config, 'producer'));
}

export function openCatalog(config: Config): Catalog {
  return new Catalog(config.catalogPath);
}
