/**
 * The service under test, as it is deployed: two worker processes, the producer in a process of
 * its own, a private Redis the harness may restart empty, an S3 mirror on s3rver it may hang or
 * stop, and a webhook receiver for the alerts. WAL archiving on at a short interval.
 */
import type { Catalog } from '../../src/shared/catalog/catalog.js';
import { sandbox, TEST_TOKEN, type Sandbox } from '../helpers/env.js';
import { spawnTs, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { openCatalog } from '../helpers/producer.js';
import { freePort, PrivateRedis } from '../helpers/redis-server.js';
import { S3Server } from '../helpers/s3.js';
import { WebhookReceiver } from '../helpers/webhook.js';

export const JOB_LOCK_DURATION = 2_000;
export const STALLED_INTERVAL = 1_000;
export const WORKERS = 2;

export class Service {
  readonly workers: (Proc | undefined)[] = [];
  producer: Proc | undefined;
  private constructor(
    readonly box: Sandbox,
    readonly redis: PrivateRedis,
    readonly s3: S3Server,
    readonly hooks: WebhookReceiver,
    readonly port: number,
    readonly intervalMs: number,
  ) {}

  /** The sandbox (and its database) first, then `prepare` makes the application's database, then the processes. */
  static async start(name: string, intervalMs: number, prepare: (databasePath: string) => void): Promise<Service> {
    const [redis, s3, hooks, port] = await Promise.all([PrivateRedis.start(), S3Server.start(), WebhookReceiver.start(), freePort()]);
    const box = sandbox(name, {
      REDIS_URL: redis.url,
      ...s3.env(),
      BACKUP_MIRROR_TIMEOUT: '3000',
      WAL_ARCHIVE_ENABLED: 'true',
      WAL_ARCHIVE_INTERVAL: String(intervalMs),
      JOB_LOCK_DURATION: String(JOB_LOCK_DURATION),
      STALLED_INTERVAL: String(STALLED_INTERVAL),
      ALERT_WEBHOOK_URL: hooks.url,
      ALERT_ATTEMPTS: '2',
      REQUEST_TIMEOUT: '90000',
      MAX_BACKUPS: '50',
      PORT: String(port),
    });
    prepare(box.config.databasePath);
    const service = new Service(box, redis, s3, hooks, port, intervalMs);
    for (let i = 0; i < WORKERS; i++) await service.startWorker(i);
    await service.startProducer();
    return service;
  }

  private catalogHandle: Catalog | undefined;
  get catalog(): Catalog {
    this.catalogHandle ??= openCatalog(this.box.config);
    return this.catalogHandle;
  }

  get databasePath(): string {
    return this.box.config.databasePath;
  }

  async startWorker(i: number): Promise<void> {
    if (this.workers[i] && this.workers[i]!.child.exitCode === null && this.workers[i]!.child.signalCode === null) return;
    this.workers[i] = await startWorkerProcess(this.box.env);
  }

  async killWorker(i: number): Promise<void> {
    await this.workers[i]?.kill();
  }

  async startProducer(): Promise<void> {
    const producer = spawnTs('src/producer/server.ts', { ...this.box.env, LOG_LEVEL: 'info' });
    await producer.waitFor(/producer listening/);
    this.producer = producer;
  }

  /** A request to the producer with the API token; the body parsed (or null). */
  async api(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      headers: { Authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  async stop(): Promise<void> {
    this.catalogHandle?.close();
    this.s3.resume();
    await this.producer?.stop();
    await Promise.all(this.workers.map((w) => w?.stop()));
    await this.redis.kill();
    await this.s3.cleanup();
    await this.hooks.close();
    await this.box.cleanup().catch(() => undefined);
  }
}
