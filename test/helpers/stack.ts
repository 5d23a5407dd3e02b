import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { afterAll, beforeAll } from 'vitest';
import { sandbox, type Sandbox, type SandboxEnv } from './env.js';
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

/** A stack with the sandbox it runs on. */
export interface SandboxStack extends Stack {
  box: Sandbox;
}

export interface StackOptions {
  /** What the sandbox adds or changes (a function of its directory for a path in it). */
  env?: SandboxEnv;
  /** The workstation database's size (1 MB by default). */
  sizeMb?: number;
  /** Changes the database after it is made and before the worker opens it. */
  prepare?: (databasePath: string) => void;
}

/**
 * The stack of one test file on a sandbox of its own (a temp directory, a BullMQ prefix): started
 * before its tests, stopped and the sandbox removed after them. The object is filled in once
 * `beforeAll` has run (an `env` function may read what an earlier `beforeAll` started, such as a
 * webhook receiver's URL); a test that restarts the worker or producer assigns `stack.worker` or
 * `stack.producer`, and that one is stopped at the end.
 */
export function useStack(name: string, { env, sizeMb = 1, prepare }: StackOptions = {}): SandboxStack {
  const stack = {} as SandboxStack;
  beforeAll(async () => {
    stack.box = sandbox(name, env);
    Object.assign(stack, await startStack(stack.box, sizeMb, prepare));
  });
  afterAll(async () => {
    const { box, ...parts } = stack;
    await stopStack(parts);
    await box?.cleanup();
  });
  return stack;
}
