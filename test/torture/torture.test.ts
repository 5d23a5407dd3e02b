/**
 * The torture harness (test/torture/, `npm run torture`): an application in a process of its own,
 * each commit logged with its sequence number, time and state digest, while faults hit the real
 * service; then restores to latest and to random moments are judged against that log. Bounded
 * here to about a minute of load; TORTURE_SEED replays a run, TORTURE_SECONDS makes it longer.
 * First, on a small database, that the verdicts can fail: a state that never existed, a state from
 * after the target, a loss nothing announced, and one a gap announced.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReport } from './report.js';
import { runTorture } from './run.js';
import { inspect, prepareDatabase, readTruth, tortureApp } from './truth.js';
import { judge, type Announcement } from './verdict.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-torture-verdict-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the verdicts', () => {
  it.each(['node', 'python'] as const)(
    'judge a file the %s application wrote against its log, and fail when they should',
    async (build) => {
      const file = path.join(dir, `${build}.db`);
      const log = path.join(dir, `${build}.log`);
      prepareDatabase(file, log);
      const app = tortureApp(build, file, log, 1);
      await app.start();
      const tx = { op: 'tx' as const, ins: 5, upd: 2, del: 1, updAt: 0.3, delAt: 0.6, len: 200 };
      for (let i = 0; i < 6; i++) expect((await app.send(tx)).ok).toBe(true);
      expect((await app.send({ op: 'ckpt', mode: 'TRUNCATE' })).ok).toBe(true);
      // The state after commit 6, copied aside as a restore would leave it.
      const copy = path.join(dir, `${build}-at-6.db`);
      fs.copyFileSync(file, copy);
      for (let i = 0; i < 3; i++) expect((await app.send(tx)).ok).toBe(true);
      await app.stop();

      const truth = readTruth(log);
      expect(truth.commits.map((c) => c.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const state = inspect(copy);
      expect(state).toMatchObject({ integrity: 'ok', seq: 6, digest: truth.bySeq.get(6)!.d });
      expect(inspect(file)).toMatchObject({ integrity: 'ok', seq: 9, digest: truth.bySeq.get(9)!.d });
      const c = (seq: number) => truth.bySeq.get(seq)!;
      const judged = (target: number, announcements: Announcement[] = [], t = truth) =>
        judge(t, state, { kind: 'moment', at: target }, { intervalMs: 100, announcements });

      // Right: the target is after commit 6 and before commit 7 could have been archived.
      expect(judged(c(6).ta + 150).status).toBe('matched');
      // The log says commit 6 left another digest: a state that never existed.
      const forged = { ...truth, bySeq: new Map(truth.bySeq).set(6, { ...c(6), d: c(5).d }) };
      expect(judged(c(6).ta + 150, [], forged)).toMatchObject({ status: 'never-existed', detail: expect.stringMatching(/never existed/) });
      // A target before commit 6 began: a state from after the target.
      expect(judged(c(6).tb - 1).status).toBe('future');
      // Commits 7-9 made well before the target are missing, and nothing said so: a silent loss.
      const late = c(9).ta + 1_000;
      expect(judged(late)).toMatchObject({ status: 'silent-loss', lost: { count: 3, first: { seq: 7 }, last: { seq: 9 } } });
      // The same with a gap in the window over them: an announced loss.
      const gap = { from: c(7).tb - 10, to: c(9).ta + 10, source: 'a gap in the window', reason: 'test' };
      expect(judged(late, [gap]).status).toBe('announced-loss');
      // A gap elsewhere does not cover them.
      expect(judged(late, [{ ...gap, from: late + 5_000, to: late + 6_000 }]).status).toBe('silent-loss');
      // A file that is not a database.
      fs.writeFileSync(path.join(dir, 'junk.db'), Buffer.alloc(8192, 7));
      expect(
        judge(truth, inspect(path.join(dir, 'junk.db')), { kind: 'latest', settledAt: late }, { intervalMs: 100, announcements: [] })
          .status,
      ).toBe('never-existed');
    },
  );
});

describe('a torture run', () => {
  const seconds = Number(process.env.TORTURE_SECONDS ?? 60);
  const seed = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));

  it(`no silent loss, no state that never existed, every provoked gap visible (seed ${seed})`, async () => {
    const started = Date.now();
    const report = await runTorture({ seconds, seed, moments: 20 });
    const text = formatReport(report, Date.now() - started);
    console.log(text);
    expect(report.restoresChecked, text).toBeGreaterThanOrEqual(21);
    expect(report.scenarios.length, text).toBeGreaterThanOrEqual(2);
    expect(report.silentLosses, text).toBe(0);
    expect(report.neverExisted, text).toBe(0);
    expect(report.visibleGaps, text).toBe(report.provokedGaps);
    expect(report.failures, text).toEqual([]);
  }, 240_000);
});
