import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { WebhookReceiver } from '../helpers/webhook.js';
import { useStack } from '../helpers/stack.js';

let hook: WebhookReceiver;

beforeAll(async () => {
  hook = await WebhookReceiver.start();
});
afterAll(() => hook?.close());

// The catalog lives outside BACKUP_DIR here, so a test can put a file where the directory was.
const stack = useStack('alerts', {
  env: (dir) => ({ JOB_ATTEMPTS: '2', ALERT_WEBHOOK_URL: hook.url, CATALOG_PATH: path.join(dir, 'catalog.db') }),
});

describe('alerts to ALERT_WEBHOOK_URL', () => {
  it('report a backup that fails for good, with the reason, without holding up the job, and are retried', async () => {
    hook.plan('hold', 503);
    fs.renameSync(stack.box.config.databasePath, `${stack.box.config.databasePath}.away`);
    let res;
    try {
      res = await request(stack.producer.server).post('/api/backups').set(auth);
    } finally {
      fs.renameSync(`${stack.box.config.databasePath}.away`, stack.box.config.databasePath);
    }
    // The job's failure reached the API while the webhook still had not answered.
    expect(res.status).toBe(500);
    await waitUntil('the alert to arrive', () => hook.heldCount === 1);
    expect(hook.deliveries).toHaveLength(1);

    hook.release(503); // the first attempt fails: it must be sent again
    await waitUntil('the alert to be delivered', () => hook.deliveries.some((d) => d.status === 200), 20_000);
    expect(hook.deliveries.map((d) => d.status)).toEqual([503, 503, 200]);

    const row = stack.catalog.getBackup(res.body.backup.id)!;
    const alert = hook.deliveries.at(-1)!.body;
    expect(alert).toMatchObject({
      event: 'backup.failed',
      service: 'workstation-backup',
      queue: 'backup',
      jobId: row.job_id,
      // A missing database is permanent: one attempt, no retries wasted.
      attemptsMade: 1,
      data: { type: 'manual' },
      queuePrefix: stack.box.prefix,
    });
    expect(alert.reason).toMatch(/database file .*workstation\.db does not exist/);
    expect(alert.reason).toBe(row.error_message);
    expect(hook.deliveries.at(-1)!.headers['content-type']).toBe('application/json');
    // Every attempt carried the same alert.
    expect(new Set(hook.deliveries.map((d) => JSON.stringify(d.body))).size).toBe(1);
  });

  it('come once, after the last attempt, for a failure that is retried', async () => {
    const before = hook.deliveries.length;
    // A file where BACKUP_DIR should be: creating the directory fails with EEXIST, which is not
    // known to be permanent, so the job is retried (JOB_ATTEMPTS=2) before it fails for good.
    const moved = `${stack.box.config.backupDir}.moved`;
    fs.renameSync(stack.box.config.backupDir, moved);
    fs.writeFileSync(stack.box.config.backupDir, 'not a directory');
    let res;
    try {
      res = await request(stack.producer.server).post('/api/backups').set(auth);
    } finally {
      fs.rmSync(stack.box.config.backupDir);
      fs.renameSync(moved, stack.box.config.backupDir);
    }
    expect(res.status).toBe(500);
    const alerts = await waitUntil('the alert', () => {
      const got = hook.deliveries.slice(before);
      return got.length ? got : null;
    });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.body).toMatchObject({
      event: 'backup.failed',
      attemptsMade: 2,
      jobId: stack.catalog.getBackup(res.body.backup.id)!.job_id,
    });
    expect(alerts[0]!.body.reason).toMatch(/EEXIST/);
    const job = await request(stack.producer.server).get(`/api/jobs/${alerts[0]!.body.jobId}`).set(auth);
    expect(job.body.job).toMatchObject({ state: 'failed', attemptsMade: 2 });
  });
});

describe('alerts for verification', () => {
  it('report a backup that verification finds damaged, with what failed', async () => {
    const made = await request(stack.producer.server).post('/api/backups').set(auth);
    expect(made.status).toBe(201);
    fs.appendFileSync(made.body.backup.filePath, 'tampered');
    const before = hook.deliveries.length;
    const res = await request(stack.producer.server).post(`/api/backups/${made.body.backup.id}/verify`).set(auth);
    expect(res.body).toMatchObject({ success: true, valid: false });
    const [alert] = await waitUntil('the alert', () => (hook.deliveries.length > before ? hook.deliveries.slice(before) : null));
    expect(alert!.body).toMatchObject({
      event: 'verify.invalid',
      queue: 'verify',
      backupId: made.body.backup.id,
      reason: res.body.message,
    });
    expect(alert!.body.reason).toMatch(/checksum/i);
  });
});

describe('the overdue watchdog', () => {
  let hook2: WebhookReceiver;

  beforeAll(async () => {
    hook2 = await WebhookReceiver.start();
  });
  afterAll(() => hook2?.close());

  // Automatic backups every second, and no worker to take them.
  const quiet = useStack('overdue', {
    env: () => ({ AUTO_BACKUP_ENABLED: 'true', AUTO_BACKUP_INTERVAL: '1000', ALERT_WEBHOOK_URL: hook2.url }),
    workers: 0,
  });

  it('alerts once when scheduled backups are overdue', async () => {
    const [alert] = await waitUntil('the overdue alert', () => (hook2.of('backup.overdue').length ? hook2.of('backup.overdue') : null));
    expect(alert!.body).toMatchObject({
      event: 'backup.overdue',
      summary: 'automatic backups are overdue',
      lastSuccessfulBackup: null,
      queuePrefix: quiet.box.prefix,
    });
    expect(alert!.body.reason).toMatch(/^no backup has succeeded in \d+ s; automatic backups run every 1 s; no worker process is alive$/);
    // The same overdue spell is not reported again on the next checks.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(hook2.of('backup.overdue')).toHaveLength(1);
  });
});
