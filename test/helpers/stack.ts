import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import type { Sandbox } from './env.js';
import { killAll, startWorkerProcess, type Proc } from './processes.js';
import { openCatalog, startTestProducer } from './producer.js';
import { createWorkstationDb } from './workstation-db.js';

/** What most test files run against: one worker process, the producer and the catalog. */
export interface Stack {
  worker: Proc;
  producer: RunningProducer;
  catalog: Catalog;
}

/**
 * A workstation database of about `sizeMb`, then the stack on the sandbox's configuration.
 * `prepare` changes the database after it is made and before the worker opens it.
 */
export async function startStack(box: Sandbox, sizeMb = 1, prepare?: (databasePath: string) => void): Promise<Stack> {
  createWorkstationDb(box.config.databasePath, { sizeMb });
  prepare?.(box.config.databasePath);
  const worker = await startWorkerProcess(box.env);
  const producer = await startTestProducer(box.config);
  return { worker, producer, catalog: openCatalog(box.config) };
}

/** Closes a stack; pass the current parts, since a test may have replaced one. */
export async function stopStack({ catalog, producer, worker }: Partial<Stack>): Promise<void> {
  catalog?.close();
  await producer?.close();
  await worker?.stop();
  await killAll();
}
