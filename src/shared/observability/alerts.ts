import { hostname } from 'node:os';
import pRetry, { AbortError } from 'p-retry';
import type { Config } from '../runtime/config.js';
import type { Logger } from '../runtime/logger.js';
import type { OpsMetrics } from './metrics.js';

export const ALERT_EVENTS = [
  'backup.failed',
  'verify.failed',
  'restore.failed',
  'verify.invalid',
  'backup.overdue',
  'database.damaged',
  'mirror.failed',
  'mirror.lagging',
  'wal.gap',
  'wal.lagging',
  'wal.failed',
  'drill.failed',
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

/** The JSON body POSTed to ALERT_WEBHOOK_URL. */
export interface Alert {
  event: AlertEvent;
  /** One sentence for a person. */
  summary: string;
  /** Why: the job's failure reason, the verification's message, how late the backup is. */
  reason: string;
  at: string;
  service: 'workstation-backup';
  host: string;
  queuePrefix: string;
  queue?: string;
  jobId?: string;
  attemptsMade?: number;
  backupId?: number;
  data?: unknown;
  lastSuccessfulBackup?: string | null;
}

export interface AlertOptions {
  url: string | undefined;
  attempts: number;
  timeoutMs: number;
  queuePrefix: string;
  log: Logger;
  /** First retry delay; doubles each attempt, at most 30 s. */
  minRetryDelayMs?: number;
  onOutcome?: (outcome: 'delivered' | 'dropped') => void;
}

/**
 * Sends alerts to the webhook in the background: `send` returns at once, so a slow or dead
 * receiver never holds up a job or a request. Each alert is retried with backoff (network errors,
 * timeouts, 5xx, 408, 429); another 4xx will not get better and is given up at once. An alert
 * still being retried when the process stops is lost after `flush`'s bound: alerts are a
 * notification, the catalog and the job's failed state remain the record.
 */
export class AlertSender {
  private readonly pending = new Set<Promise<void>>();
  private readonly stopped = new AbortController();

  constructor(private readonly opts: AlertOptions) {}

  get enabled(): boolean {
    return this.opts.url !== undefined;
  }

  send(alert: Omit<Alert, 'at' | 'service' | 'host' | 'queuePrefix'>): void {
    if (!this.opts.url) return;
    const body: Alert = {
      ...alert,
      at: new Date().toISOString(),
      service: 'workstation-backup',
      host: hostname(),
      queuePrefix: this.opts.queuePrefix,
    };
    const delivery = this.deliver(this.opts.url, body).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  private async deliver(url: string, body: Alert): Promise<void> {
    const { log, attempts, timeoutMs } = this.opts;
    try {
      await pRetry(
        async () => {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'user-agent': 'workstation-backup' },
            body: JSON.stringify(body),
            signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.stopped.signal]),
            redirect: 'error',
          });
          await res.body?.cancel();
          if (res.ok) return;
          const message = `webhook answered ${res.status}`;
          if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new AbortError(message);
          throw new Error(message);
        },
        {
          retries: attempts - 1,
          minTimeout: this.opts.minRetryDelayMs ?? 1_000,
          maxTimeout: 30_000,
          factor: 2,
          signal: this.stopped.signal,
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            log.warn({ event: body.event, attempt: attemptNumber, retriesLeft, err: error }, 'alert delivery failed');
          },
        },
      );
      this.opts.onOutcome?.('delivered');
      log.info({ event: body.event, jobId: body.jobId }, 'alert delivered');
    } catch (err) {
      this.opts.onOutcome?.('dropped');
      log.error({ event: body.event, jobId: body.jobId, err }, 'alert dropped: the webhook did not take it');
    }
  }

  /** Waits up to `timeoutMs` for alerts in flight, then abandons the rest (shutdown). */
  async flush(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.stopped.abort();
    await Promise.allSettled([...this.pending]);
  }
}

/** The sender every process uses: configured from the environment, counting outcomes in its metrics. */
export function alertSenderFor(config: Config, log: Logger, metrics: OpsMetrics): AlertSender {
  return new AlertSender({
    url: config.alertWebhookUrl,
    attempts: config.alertAttempts,
    timeoutMs: config.alertTimeout,
    queuePrefix: config.queuePrefix,
    log: log.child({ component: 'alerts' }),
    onOutcome: (outcome) => metrics.alerts.inc({ outcome }),
  });
}
