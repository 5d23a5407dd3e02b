import { afterAll, beforeAll } from 'vitest';
import { sandbox, type Sandbox } from './env.js';
import { startStack, stopStack, type Stack } from './stack.js';
import { addEventsTable } from './wal-writer.js';
import { WebhookReceiver } from './webhook.js';

/** What the WAL archive's tests run against: the stack (stack.ts) on a sandbox with archiving on, and a webhook receiver. */
export interface WalStack extends Stack {
  box: Sandbox;
  hooks: WebhookReceiver;
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
  return { box, hooks, ...(await startStack(box, 1, addEventsTable)) };
}

/** Stops what `startWalStack` started (whatever of it is there) and removes the sandbox. */
export async function stopWalStack({ box, hooks, ...stack }: Partial<WalStack>): Promise<void> {
  await stopStack(stack);
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
