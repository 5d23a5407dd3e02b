/**
 * The application exits: its last commits were made more than two intervals before the service
 * stopped, so a restore to latest from the archive alone must hold every one of them. The
 * application is Python's sqlite3 (SQLite 3.40, not the service's build) in a process of its own;
 * it closes its connection and exits normally, as an application does.
 */
import { expect, it } from 'vitest';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import { archivingUnderWay, BALANCE_TOTAL, chainProblems, deleteDatabase, sleep, startWalWriter, stateOf } from '../helpers/wal-writer.js';
import { useWalStack } from '../helpers/wal-stack.js';

const INTERVAL = 500;
const stack = useWalStack('wal-app-exit', INTERVAL);

it('keeps every commit of an application that exited two intervals before the service stopped', async () => {
  const db = stack.box.config.databasePath;
  await archivingUnderWay(stack.catalog, { segments: 0 });
  const writer = await startWalWriter(db, { build: 'python', everyMs: 5, seconds: 6 });
  await writer.finished;
  const last = writer.lastN();
  expect(last).toBeGreaterThan(300);
  await sleep(3 * INTERVAL);
  await stack.worker.stop();
  deleteDatabase(db);

  const run = await runCli({ ...stack.box.env, REDIS_URL: REDIS_DOWN }, 'restore', '--to', 'latest', '--yes');
  expect(run.code, run.stderr).toBe(0);
  const state = stateOf(db);
  expect(state.integrity).toBe('ok');
  expect(state.balanceSum).toBe(BALANCE_TOTAL);
  expect(state.events).toEqual({ count: last, max: last, contiguous: true });
  expect(chainProblems(stack.catalog)).toEqual([]);
}, 90_000);
