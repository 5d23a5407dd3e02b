import type { Redis } from 'ioredis';
import type { Catalog } from '../shared/catalog.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { Queues } from '../shared/queues.js';

/** What the HTTP side is built from; tests pass real ones. */
export interface ProducerDeps {
  config: Config;
  catalog: Catalog;
  queues: Queues;
  redis: Redis;
  log: Logger;
  apiToken: string;
}
