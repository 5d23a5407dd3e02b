import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { codeOf, messageOf, permanentFailure } from '../domain/errors.js';

/** The code of the error a cancelled job fails with; its message starts with `cancelled`. */
export const CANCELLED = 'cancelled';

/** Why the job was cancelled, as the failure reason an operator reads on the row and the job. */
export function cancelledError(signal: AbortSignal) {
  const reason: unknown = signal.reason;
  const why = reason === undefined || (reason instanceof Error && reason.name === 'AbortError') ? '' : messageOf(reason);
  return permanentFailure(CANCELLED, why ? `${CANCELLED}: ${why}` : CANCELLED, why ? reason : undefined);
}

/**
 * A safe point of a long operation: past it the work can stop without leaving anything half done.
 * Operations call it between their steps; steps themselves are never interrupted halfway.
 */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}

export const isCancelled = (err: unknown): boolean => codeOf(err) === CANCELLED;

/** The states of a `CancelGate`'s cell. */
export const GATE = { open: 0, stopped: 1, committed: 2 } as const;

/**
 * One decision, taken once, between stopping a run and its point of no return: the copy into the
 * live database, which cannot be interrupted halfway (it is one SQLite step) and which stopping
 * its thread would only hide, not undo. Whichever comes first wins; the other is refused. The cell
 * is in shared memory so that the SQLite thread, right before it writes its first page (or, for a
 * copy held open beside the checks, the step that commits it), takes the decision with the same
 * atomic operation as a cancel request on the main thread.
 */
export class CancelGate {
  readonly cell = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  readonly #controller = new AbortController();
  /** Aborted once a cancel has been taken. */
  readonly signal = this.#controller.signal;

  /** Takes a cancel unless the point of no return is passed: then false, and nothing is aborted. */
  cancel(reason?: unknown): boolean {
    if (Atomics.compareExchange(this.cell, 0, GATE.open, GATE.stopped) === GATE.committed) return false;
    this.#controller.abort(reason);
    return true;
  }

  /** Passes the point of no return: false when the run was stopped first. */
  commit(): boolean {
    return Atomics.compareExchange(this.cell, 0, GATE.open, GATE.committed) !== GATE.stopped;
  }

  get committed(): boolean {
    return Atomics.load(this.cell, 0) === GATE.committed;
  }
}

/** What the process running a job answers a cancel request: taken, or refused past the point of no return. */
export type CancelAnswer = 'cancelled' | 'refused';

/** The gates of the jobs one worker process runs, by queue and job id. */
export class CancelGates {
  readonly #gates = new Map<string, CancelGate>();

  /** A gate for a job starting here; a cancel of the job by BullMQ's own signal goes through it too. */
  open(queue: string, jobId: string, upstream?: AbortSignal): CancelGate {
    const gate = new CancelGate();
    upstream?.addEventListener('abort', () => gate.cancel(upstream.reason), { once: true });
    this.#gates.set(`${queue}:${jobId}`, gate);
    return gate;
  }

  close(queue: string, jobId: string, gate: CancelGate): void {
    if (this.#gates.get(`${queue}:${jobId}`) === gate) this.#gates.delete(`${queue}:${jobId}`);
  }

  get(queue: string, jobId: string): CancelGate | undefined {
    return this.#gates.get(`${queue}:${jobId}`);
  }

  /** Undefined when the job does not run in this process. */
  cancel(queue: string, jobId: string, reason?: string): CancelAnswer | undefined {
    const gate = this.get(queue, jobId);
    if (!gate) return undefined;
    return gate.cancel(reason) ? 'cancelled' : 'refused';
  }
}

/**
 * BullMQ's `worker.cancelJob` only reaches a job from the process that runs it, so a request to
 * cancel goes to every worker process over Redis pub/sub; the one running the job aborts it, the
 * others (and a job no longer running) ignore it. Nothing is kept: a request made while no worker
 * listens is lost, as a click on a job that already finished would be.
 */
const cancelChannel = (prefix: string) => `${prefix}:cancel-requests`;

const cancelRequestSchema = z.object({
  queue: z.string(),
  jobId: z.string(),
  reason: z.string().optional(),
  /** Where the process running the job puts its answer, when the caller waits for one. */
  replyTo: z.string().optional(),
});
export type CancelRequest = z.infer<typeof cancelRequestSchema>;

const replyKey = (prefix: string, replyTo: string) => `${prefix}:cancel-replies:${replyTo}`;
const REPLY_TTL_MS = 60_000;

/** Asks the worker running a job to cancel it; resolves to the number of worker processes that heard. */
export function requestCancel(redis: Redis, prefix: string, request: CancelRequest): Promise<number> {
  return redis.publish(cancelChannel(prefix), JSON.stringify(request));
}

/**
 * Asks the worker running a job to cancel it and waits up to `waitMs` for its answer. No answer
 * (undefined) when no process runs the job (it has not started, has ended, or its worker died).
 */
export async function askToCancel(
  redis: Redis,
  prefix: string,
  request: Omit<CancelRequest, 'replyTo'>,
  waitMs: number,
): Promise<{ heardBy: number; answer?: CancelAnswer }> {
  const replyTo = randomUUID();
  const heardBy = await requestCancel(redis, prefix, { ...request, replyTo });
  if (heardBy === 0) return { heardBy };
  const key = replyKey(prefix, replyTo);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const answer = await redis.lpop(key);
    if (answer === 'cancelled' || answer === 'refused') return { heardBy, answer };
    if (Date.now() >= deadline) return { heardBy };
    await sleep(10);
  }
}

/** Tells the caller of `askToCancel` what became of its request; nothing when it does not wait. */
export async function answerCancel(redis: Redis, prefix: string, request: CancelRequest, answer: CancelAnswer): Promise<void> {
  if (!request.replyTo) return;
  const key = replyKey(prefix, request.replyTo);
  await redis.multi().rpush(key, answer).pexpire(key, REPLY_TTL_MS).exec();
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
