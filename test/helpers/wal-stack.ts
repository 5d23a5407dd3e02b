import { afterAll, beforeAll } from 'vitest';
import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { sandbox, type Sandbox } from './env.js';
import { killAll, startWorkerProcess, type Proc } from './processes.js';
import { openCatalog, startTestProducer } from './producer.js';
import { addEventsTable } from './wal-writer.js';
import { WebhookReceiver } from './webhook.js';
import { createWorkstationDb } from './workstation-db.js';

/** What the WAL archive's tests run against: a sandbox with archiving on, a webhook receiver, a worker process, a producer and the catalog. */
export interface WalStack {
  box: Sandbox;
  hooks: WebhookReceiver;
  worker: Proc;
  producer: RunningProducer;
  catalog: Catalog;
}

/**
 * A 1 MB Workstation database with the writer's `events` table, WAL archiving on every
 * `intervalMs`, alerts to a local receiver; `extra` adds or changes variables.
 */
export async function startWalStack(name: string, intervalMs: number, extra: Record<string, string> = {}): Promise<WalStack> {
  const hooks = await WebhookReceiver.start();
  const box = sandbox(name, {
    WAL_ARCHIVE_ENABLED: 'true',
    WAL_ARCHIVE_INTERVAL: String(intervalMs),
    ALERT_WEBHOOK_URL: hooks.url,
    REQUEST_TIMEOUT: '60000',
    ...extra,
  });
  createWorkstationDb(box.config.databasePath, { sizeMb: 1 });
  addEventsTable(box.config.databasePath);
  const worker = await startWorkerProcess(box.env);
  const producer = await startTestProducer(box.config);
  return { box, hooks, worker, producer, catalog: openCatalog(box.config) };
}

/** Stops what `startWalStack` started (whatever of it is there) and removes the sandbox. */
export async function stopWalStack({ box, hooks, worker, producer, catalog }: Partial<WalStack>): Promise<void> {
  catalog?.close();
  await producer?.close();
  await worker?.stop();
  await killAll();
  await hooks?.close();
  await box?.cleanup();
}

/**
 * The stack of one test file: started before its tests and stopped after them. The object is
 * filled in once `beforeAll` has run; a test that restarts the worker assigns `stack.worker`, and
 * that one is stopped at the end.
 */
export function useWalStack(name: string, intervalMs: number, extra: Record<string, string> = {}): WalStack {
  const stack = {} as WalStack;
  beforeAll(async () => {
    Object.assign(stack, await startWalStack(name, intervalMs, extra));
  });
  afterAll(() => stopWalStack(stack));
  return stack;
}
