import type { RunningProducer } from '../../src/producer/server.js';
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { afterAll, beforeAll } from 'vitest';
import { sandbox, type Sandbox, type SandboxEnv } from './env.js';
import { startProducerProcess, startWorker } from './faults.js';
import { killAll, type Proc } from './processes.js';
import { openCatalog, startTestProducer } from './producer.js';
import { createWorkstationDb } from './workstation-db.js';

/** The producer as a process of its own, and the URL it listens on. */
export type ProducerProcess = Awaited<ReturnType<typeof startProducerProcess>>;

/** What most test files run against: worker processes, the producer and the catalog. */
export interface Stack<P extends RunningProducer | ProducerProcess = RunningProducer> {
  /** The first of `workers` (there is none with `workers: 0`). */
  worker: Proc;
  workers: Proc[];
  producer: P;
  catalog: Catalog;
}

/** How a stack is started on its sandbox. */
export interface StackParts {
  /** The workstation database's size (1 MB by default). */
  sizeMb?: number;
  /** Makes the database in place of the workstation database (a database of another shape). */
  database?: (databasePath: string) => void;
  /**
   * Changes the database after it is made and before any process opens it; may also set up what
   * the stack needs in its sandbox (a backup made by the CLI, a volume mounted on BACKUP_DIR).
   */
  prepare?: (databasePath: string, box: Sandbox) => void | Promise<void>;
  /** How many worker processes, started at once (1 by default; 0 where a test starts its own). */
  workers?: number;
  /**
   * The producer in the test's process (the default), or as a process of its own (`'process'`:
   * what a test kills or loads as a deployment would, or one that needs the process environment).
   */
  producer?: 'in-process' | 'process';
}

/**
 * The database (a workstation database of about `sizeMb` unless `database` makes another), then
 * the stack on the sandbox's configuration. A number for `parts` is the size, with `prepare` after it.
 */
export async function startStack(box: Sandbox, parts?: StackParts & { producer?: 'in-process' }): Promise<Stack>;
export async function startStack(box: Sandbox, parts: StackParts & { producer: 'process' }): Promise<Stack<ProducerProcess>>;
export async function startStack(box: Sandbox, sizeMb: number, prepare?: (databasePath: string) => void): Promise<Stack>;
export async function startStack(box: Sandbox, parts: StackParts | number = {}, prepare?: (databasePath: string) => void) {
  return start(box, typeof parts === 'number' ? { sizeMb: parts, prepare } : parts);
}

async function start(box: Sandbox, parts: StackParts): Promise<Stack<RunningProducer | ProducerProcess>> {
  const { sizeMb = 1, database, prepare, workers: count = 1, producer: kind = 'in-process' } = parts;
  if (database) database(box.config.databasePath);
  else createWorkstationDb(box.config.databasePath, { sizeMb });
  await prepare?.(box.config.databasePath, box);
  // Started at once, each with faults.ts's generous time to be ready on a loaded machine.
  const workers = await Promise.all(Array.from({ length: count }, () => startWorker(box.env)));
  const producer = kind === 'process' ? await startProducerProcess(box.env) : await startTestProducer(box.config);
  return { worker: workers[0]!, workers, producer, catalog: openCatalog(box.config) };
}

/** Closes a stack; pass the current parts, since a test may have replaced one. */
export async function stopStack({
  catalog,
  producer,
  worker,
  workers = [],
}: Partial<Stack<RunningProducer | ProducerProcess>>): Promise<void> {
  catalog?.close();
  if (producer && 'proc' in producer) await producer.proc.stop();
  else await producer?.close();
  await Promise.all([...new Set([worker, ...workers])].map((w) => w?.stop()));
  await killAll();
}

/** A stack with the sandbox it runs on. */
export type SandboxStack<P extends RunningProducer | ProducerProcess = RunningProducer> = Stack<P> & { box: Sandbox };

export interface StackOptions extends StackParts {
  /** What the sandbox adds or changes (a function of its directory for a path in it). */
  env?: SandboxEnv;
  /** Undoes what `prepare` set up, after the stack stopped and before the sandbox is removed. */
  teardown?: (box: Sandbox) => void | Promise<void>;
  /** How long starting the stack may take (vitest's hookTimeout by default). */
  timeoutMs?: number;
}

/**
 * The stack of one test file (or of a `describe` block) on a sandbox of its own (a temp directory,
 * a BullMQ prefix): started before its tests, stopped and the sandbox removed after them. The object
 * is filled in once `beforeAll` has run (an `env` function may read what an earlier `beforeAll`
 * started, such as a webhook receiver's URL); a test that restarts a worker or the producer assigns
 * `stack.worker` or `stack.producer`, and that one is stopped at the end.
 */
export function useStack(name: string, options: StackOptions & { producer: 'process' }): SandboxStack<ProducerProcess>;
export function useStack(name: string, options?: StackOptions & { producer?: 'in-process' }): SandboxStack;
export function useStack(
  name: string,
  { env, teardown, timeoutMs, ...parts }: StackOptions = {},
): SandboxStack<RunningProducer | ProducerProcess> {
  const stack = {} as SandboxStack<RunningProducer | ProducerProcess>;
  beforeAll(async () => {
    stack.box = sandbox(name, env);
    Object.assign(stack, await start(stack.box, parts));
  }, timeoutMs);
  afterAll(async () => {
    const { box, ...running } = stack;
    try {
      await stopStack(running);
    } finally {
      if (box) await teardown?.(box);
      await box?.cleanup();
    }
  });
  return stack;
}
