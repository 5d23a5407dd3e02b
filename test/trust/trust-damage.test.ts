import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../../src/shared/sqlite/sqlite-ops.js';
import { waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { WebhookReceiver } from '../helpers/webhook.js';
import { createWorkstationDb, integrity, query } from '../helpers/workstation-db.js';
import { useStack } from '../helpers/stack.js';

let hook: WebhookReceiver;

beforeAll(async () => {
  hook = await WebhookReceiver.start();
});
afterAll(() => hook?.close());

const stack = useStack('damage', {
  env: () => ({ MAX_BACKUPS: '1', VERIFY_AFTER_BACKUP: 'true', ALERT_WEBHOOK_URL: hook.url }),
  sizeMb: 2,
});

const sha256 = (file: string) => execFileSync('sha256sum', [file]).toString().split(' ')[0]!;
const live = () => stack.box.config.databasePath;

/**
 * Overwrites the header of one b-tree page (the `accounts` table's root, a leaf) with a page type
 * that does not exist: the database still opens, and quick_check reports `btreeInitPage() returns
 * error code 11`, like a torn or misdirected write would.
 */
function damageOnePage(file: string): void {
  const { rootpage } = query<{ rootpage: number }>(file, `SELECT rootpage FROM sqlite_master WHERE name = 'accounts'`);
  const pageSize = query<{ page_size: number }>(file, 'PRAGMA page_size').page_size;
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from([0x01, 0xff, 0xff, 0xff]), 0, 4, (rootpage - 1) * pageSize);
  } finally {
    fs.closeSync(fd);
  }
  expect(integrity(file)).toMatch(/btreeInitPage\(\) returns error code 11/);
}

async function backupNow() {
  return request(stack.producer.server).post('/api/backups').set(auth);
}

async function fullyVerified(id: number) {
  await waitUntil(`full verification of backup ${id}`, () => stack.catalog.lastFullVerification(id)?.valid === 1);
}

describe('a damaged live database', () => {
  let good: { id: number; file: string; sha: string };

  it('is refused as a backup, keeps the last good backup, alerts and degrades /health', async () => {
    const first = await backupNow();
    expect(first.status).toBe(201);
    good = { id: first.body.backup.id, file: first.body.backup.filePath, sha: sha256(first.body.backup.filePath) };
    await fullyVerified(good.id);

    damageOnePage(live());
    const before = new Set(fs.readdirSync(stack.box.config.backupDir));
    const res = await backupNow();

    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('backup_failed');
    expect(res.body.error.message).toMatch(
      /^the live database is damaged: quick_check of .* reports .*btreeInitPage\(\) returns error code 11/,
    );
    const failed = stack.catalog.getBackup(res.body.backup.id)!;
    expect(failed.status).toBe('failed');
    expect(failed.error_message).toBe(res.body.error.message);
    // The permanent failure is not retried, and nothing of it is left in BACKUP_DIR.
    const after = fs.readdirSync(stack.box.config.backupDir).filter((n) => !before.has(n) && !n.startsWith('backup-catalog.db'));
    expect(after).toEqual([]);

    // MAX_BACKUPS=1, yet the last good backup is still there, byte for byte.
    expect(stack.catalog.getBackup(good.id)?.status).toBe('completed');
    expect(sha256(good.file)).toBe(good.sha);
    expect(stack.catalog.completedBackups().map((b) => b.id)).toEqual([good.id]);

    const alert = await waitUntil('the database.damaged alert', () => hook.of('database.damaged')[0]);
    expect(alert.body.reason).toBe(res.body.error.message);
    expect(alert.body.summary).toContain(live());

    const health = await request(stack.producer.server).get('/health').set(auth);
    expect(health.body.status).toBe('degraded');
    expect(health.body.problems[0]).toBe(res.body.error.message);
  });

  it('is replaced by a restore that keeps its pages, and /health clears once a backup passes again', async () => {
    const res = await request(stack.producer.server).post(`/api/backups/${good.id}/restore`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body.restore.status).toBe('completed');
    expect(integrity(live())).toBe('ok');
    // No safety backup of a damaged database is listed as good; its pages are kept as they were.
    const restore = stack.catalog.getRestore(res.body.restore.id)!;
    expect(restore.safety_backup_id).toBeNull();
    const kept = /the damaged database was copied to (\S+)$/.exec(restore.error_message ?? '')?.[1];
    expect(kept).toBeDefined();
    expect(path.dirname(kept!)).toBe(stack.box.config.backupDir);
    expect(integrity(kept!)).toMatch(/btreeInitPage\(\) returns error code 11/);

    // The restored database is sound: the damage no longer shows.
    let health = await request(stack.producer.server).get('/health').set(auth);
    expect(JSON.stringify(health.body.problems ?? [])).not.toContain('damaged');

    const next = await backupNow();
    expect(next.status).toBe(201);
    // Retention keeps the last fully verified backup until the new one is verified too.
    expect(
      stack.catalog
        .completedBackups()
        .map((b) => b.id)
        .sort(),
    ).toEqual([good.id, next.body.backup.id].sort());
    await fullyVerified(next.body.backup.id);
    health = await request(stack.producer.server).get('/health').set(auth);
    expect(JSON.stringify(health.body.problems ?? [])).not.toContain('damaged');
  });
});

describe('safety backups', () => {
  it('never push regular backups out: two restores and a backup keep the backup just restored', async () => {
    const put = await request(stack.producer.server).put('/api/backups/config').set(auth).send({ maxBackups: 2 });
    expect(put.status).toBe(200);
    const a = (await backupNow()).body.backup.id as number;
    const b = (await backupNow()).body.backup.id as number;
    for (const id of [a, b]) {
      const r = await request(stack.producer.server).post(`/api/backups/${id}/restore`).set(auth);
      expect(r.status).toBe(200);
      expect(r.body.restore.status).toBe('completed');
    }
    const c = (await backupNow()).body.backup.id as number;

    const completed = stack.catalog.completedBackups();
    const regular = completed.filter((r) => r.backup_type !== 'pre-migration').map((r) => r.id);
    const safety = completed.filter((r) => r.backup_type === 'pre-migration');
    // The two newest, and b: the one just restored, whose full verification passed in the restore.
    expect(regular).toEqual([c, b]);
    expect(fs.existsSync(stack.catalog.getBackup(b)!.file_path)).toBe(true);
    expect(safety).toHaveLength(2);
    for (const s of safety) expect(fs.existsSync(s.file_path)).toBe(true);
  });
});

describe('a snapshot', () => {
  it('whose file is removed while it is written is never taken as good', async () => {
    const dir = path.join(stack.box.dir, 'short');
    fs.mkdirSync(dir);
    const source = path.join(dir, 'big.db');
    createWorkstationDb(source, { sizeMb: 48 });
    let outcomes = { rejected: 0, resolved: 0 };
    for (let i = 0; i < 3; i++) {
      const dest = path.join(dir, `copy-${i}.db`);
      const running = snapshot(source, dest, 30_000);
      // Remove the destination as soon as it appears, while the copy writes it.
      await waitUntil('the copy to start', () => fs.existsSync(dest), 10_000, 1);
      fs.rmSync(dest);
      const settled = await running.then(
        () => 'resolved' as const,
        (err: Error) => {
          expect(err.message).toMatch(/unable to open|incomplete|no such file|disk I\/O error/i);
          return 'rejected' as const;
        },
      );
      outcomes = { ...outcomes, [settled]: outcomes[settled] + 1 };
    }
    expect(outcomes).toEqual({ rejected: 3, resolved: 0 });
  });
});
