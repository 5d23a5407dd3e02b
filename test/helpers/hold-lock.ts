/** Takes the database lock the way a worker does, prints "held", and keeps it until killed. */
import { Catalog } from '../../src/shared/catalog/catalog.js';
import { loadConfig } from '../../src/shared/runtime/config.js';
import { DatabaseLock } from '../../src/shared/locking/lock.js';
import { workerRedis } from '../../src/shared/runtime/redis.js';

const config = loadConfig();
const redis = workerRedis(config.redisUrl);
const catalog = new Catalog(config.catalogPath);
const lock = await new DatabaseLock(redis, config.queuePrefix, catalog, config.lockTtl).tryAcquire('test-holder');
process.stdout.write(lock ? `held fence=${lock.fence}\n` : 'taken\n');
setInterval(() => undefined, 1_000);
