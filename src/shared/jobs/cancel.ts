import type { Redis } from 'ioredis';
import { z } from 'zod';
import { messageOf, permanentFailure } from '../domain/errors.js';

/** The code of the error a cancelled job fails with; its message starts with `cancelled`. */
export const CANCELLED = 'cancelled';

/** Why the job was cancelled, as the failure reason an operator reads on the row and the job. */
export function cancelledError(signal: AbortSignal) {
  const reason: unknown = signal.reason;
  const why = reason === undefined || (reason instanceof Error && reason.name === 'AbortError') ? '' : messageOf(reason);
  return permanentFailure(CANCELLED, why ? `${CANCELLED}: ${why}` : CANCELLED);
}

/**
 * A safe point of a long operation: past it the work can stop without leaving anything half done.
 * Operations call it between their steps; steps themselves are never interrupted halfway.
 */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}

export const isCancelled = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === CANCELLED;

/**
 * BullMQ's `worker.cancelJob` only reaches a job from the process that runs it, so a request to
 * cancel goes to every worker process over Redis pub/sub; the one running the job aborts it, the
 * others (and a job no longer running) ignore it. Nothing is kept: a request made while no worker
 * listens is lost, as a click on a job that already finished would be.
 */
const cancelChannel = (prefix: string) => `${prefix}:cancel-requests`;

const cancelRequestSchema = z.object({ queue: z.string(), jobId: z.string(), reason: z.string().optional() });
export type CancelRequest = z.infer<typeof cancelRequestSchema>;

/** Asks the worker running a job to cancel it; resolves to the number of worker processes that heard. */
export function requestCancel(redis: Redis, prefix: string, request: CancelRequest): Promise<number> {
  return redis.publish(cancelChannel(prefix), JSON.stringify(request));
}

/**
 * Listens for cancel requests on `subscriber`, a connection of its own (a subscribed connection
 * can do nothing else). Resolves once subscribed, to a function that stops listening.
 */
export async function onCancelRequest(
  subscriber: Redis,
  prefix: string,
  handle: (request: CancelRequest) => void,
): Promise<() => Promise<void>> {
  const channel = cancelChannel(prefix);
  const onMessage = (from: string, message: string) => {
    if (from !== channel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const request = cancelRequestSchema.safeParse(parsed);
    if (request.success) handle(request.data);
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', onMessage);
    await subscriber.unsubscribe(channel).catch(() => undefined);
  };
}
