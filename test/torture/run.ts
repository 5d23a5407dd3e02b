/**
 * One torture run: scenarios of the application doing random things (one build each) while faults
 * hit the service; then the archive settles, and restores to latest and to random moments of the
 * window are judged against the truth log: through the service's catalog, from the bucket alone
 * (`--from`, as a host that lost everything) once the mirror has caught up, and in place through
 * the API. Every random choice comes from one seed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { killAll } from '../helpers/processes.js';
import { BUILDS, type Answer, type Build } from '../helpers/fake-app.js';
import {
  announcements,
  apiRestore,
  bucketWindow,
  cliRestore,
  fetchWindow,
  outageCutoff,
  refusedInGap,
  type ApiWindow,
  type Checked,
} from './checks.js';
import { FaultInjector, type Fault } from './faults.js';
import { Monitor } from './monitor.js';
import { nextStep, type Kind } from './plan.js';
import { Rng } from './prng.js';
import { Service } from './service.js';
import { inspect, prepareDatabase, readTruth, tortureApp, type TruthLog } from './truth.js';
import type { Announcement, JudgeOptions, Target } from './verdict.js';

export interface TortureOptions {
  seconds: number;
  seed: number;
  intervalMs?: number;
  /** Random moments restored to (at least 20). */
  moments?: number;
  bigTransactions?: boolean;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ScenarioReport {
  n: number;
  build: Build;
  sqlite: string;
  seconds: number;
  steps: Partial<Record<Kind, number>>;
  commits: number;
  refused: number;
  appStarts: number;
  faults: string[];
  notes: string[];
}

export interface Failure {
  seed: number;
  scenario: string;
  kind: 'silent-loss' | 'never-existed' | 'future' | 'restore-failed' | 'invisible-gap' | 'gap-not-refused' | 'mirror-behind' | 'harness';
  what: string;
}

export interface TortureReport {
  seed: number;
  seconds: number;
  intervalMs: number;
  scenarios: ScenarioReport[];
  commits: number;
  faults: Fault[];
  restoresChecked: number;
  statesMatched: number;
  gapsAnnounced: number;
  announcedLosses: number;
  silentLosses: number;
  neverExisted: number;
  provokedGaps: number;
  visibleGaps: number;
  window: ApiWindow | undefined;
  /** Every generation the archive began, with why. */
  generations: { id: number; startedAt: string; reason: string; snapshotAt: string | null; segments: number }[];
  /** Seconds each phase took: start-up, scenarios, restores. */
  phases: Record<string, number>;
  checks: Checked[];
  failures: Failure[];
  keptDir?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString();

export async function runTorture(options: TortureOptions): Promise<TortureReport> {
  const intervalMs = options.intervalMs ?? 300;
  const slackMs = 2 * intervalMs;
  const say = options.log ?? (() => undefined);
  const root = new Rng(options.seed);
  const appRng = root.fork('application');
  const faultRng = root.fork('faults');
  const scenarioRng = root.fork('scenarios');
  const targetRng = root.fork('targets');
  const failures: Failure[] = [];
  const fail = (scenario: string, kind: Failure['kind'], what: string) => {
    failures.push({ seed: options.seed, scenario, kind, what });
    say(`FAILURE [${kind}] scenario ${scenario}: ${what}`);
  };

  const startedAt = Date.now();
  let logFile = '';
  const service = await Service.start('torture', intervalMs, (db) => {
    logFile = path.join(path.dirname(db), 'truth.log');
    prepareDatabase(db, logFile);
  });
  const monitor = new Monitor(service);
  const injector = new FaultInjector(service, faultRng);
  const scenarios: ScenarioReport[] = [];
  const checks: Checked[] = [];
  let window: ApiWindow | undefined;
  let truth: TruthLog | undefined;
  let keptDir: string | undefined;
  try {
    monitor.start();
    say(`seed ${options.seed}: service up in ${service.box.dir}, WAL archiving every ${intervalMs} ms`);
    await waitForArchive(service, 45_000);

    // ---- the scenarios -------------------------------------------------------------------------
    const scenariosAt = Date.now();
    const runEnd = Date.now() + options.seconds * 1_000;
    for (let n = 1; Date.now() < runEnd - 3_000; n++) {
      const build = scenarioRng.pick(BUILDS);
      const length = Math.min(scenarioRng.int(10_000, 25_000), runEnd - Date.now());
      const deadline = Date.now() + length;
      const app = tortureApp(build, service.databasePath, logFile, n);
      const report: ScenarioReport = {
        n,
        build,
        sqlite: '',
        seconds: length / 1_000,
        steps: {},
        commits: 0,
        refused: 0,
        appStarts: 0,
        faults: [],
        notes: [],
      };
      scenarios.push(report);
      await app.start();
      report.sqlite = app.version;
      say(`scenario ${n}: ${build} application (SQLite ${app.version}) for ${(length / 1_000).toFixed(1)} s`);
      const faultsBefore = injector.faults.length;
      const faulting = injector.run(n, deadline);
      while (Date.now() < deadline) {
        const { kind, step } = nextStep(appRng, injector.outage, options.bigTransactions ?? true);
        report.steps[kind] = (report.steps[kind] ?? 0) + 1;
        if (step.op === 'pause') {
          await sleep(step.ms);
          continue;
        }
        let answer: Answer;
        const sentAt = Date.now();
        try {
          answer = await app.send(step);
        } catch (err) {
          // An application stuck or gone: a finding of its own (the archiver held it up), then go on.
          report.notes.push(`${kind}: ${(err as Error).message.slice(0, 300)}`);
          await app.kill();
          logUnloggedCommit(service.databasePath, logFile, sentAt, build, n);
          continue;
        }
        if (!answer.ok) report.refused++;
        if ((kind === 'journal' || kind === 'pagesize' || kind === 'replace') && answer.ok && !answer.refused) {
          report.notes.push(`${kind} done at ${iso(Number(answer.at))}${injector.outage ? ' (every worker down)' : ''}`);
        }
      }
      await faulting;
      if (app.running) await app.stop();
      report.appStarts = app.starts;
      report.faults = injector.faults.slice(faultsBefore).map((f) => `${iso(f.start)} ${f.detail}`);
      for (const f of report.faults) say(`  fault: ${f}`);
      await settle(service, monitor, Date.now(), intervalMs);
    }

    // ---- the verdicts ------------------------------------------------------------------------
    const settledAt = Date.now();
    await settle(service, monitor, settledAt, intervalMs);
    await monitor.stop();
    truth = readTruth(logFile);
    for (const s of scenarios) s.commits = truth.commits.filter((c) => c.sc === s.n).length;
    window = await fetchWindow(service);
    const said: Announcement[] = announcements(service, window, monitor, slackMs);
    say(
      `${truth.commits.length - 1} commits, ${truth.refused} refused; window ${window.earliest} to ${window.latest}, ` +
        `${window.generations.length} generation(s), ${window.gaps.length} gap(s)`,
    );
    const options_ = (target: Target): JudgeOptions => ({
      intervalMs,
      announcements: said,
      cutoffOverride: target.kind === 'moment' ? outageCutoff(target.at, injector.faults, monitor, slackMs) : undefined,
    });
    const lastCommitAt = Math.max(...truth.commits.map((c) => c.ta));
    const latest: Target = { kind: 'latest', settledAt: lastCommitAt + slackMs + 1 };

    // Latest, then the random moments, two at a time through the CLI.
    checks.push(await cliRestore(service, truth, 'latest', latest, options_(latest), 0));
    const spans = window.generations.map((g) => [Date.parse(g.start), Date.parse(g.end)] as const).filter(([a, b]) => b >= a);
    const total = spans.reduce((s, [a, b]) => s + (b - a) + 1, 0);
    const moments: number[] = [];
    for (let i = 0; i < Math.max(20, options.moments ?? 20); i++) {
      let x = targetRng.next() * total;
      for (const [a, b] of spans) {
        if (x <= b - a) {
          moments.push(Math.round(a + x));
          break;
        }
        x -= b - a + 1;
      }
    }
    const t = truth;
    for (let i = 0; i < moments.length; i += 2) {
      const batch = moments.slice(i, i + 2).map((at, j) => {
        const target: Target = { kind: 'moment', at };
        return cliRestore(service, t, iso(at), target, options_(target), i + j + 1);
      });
      checks.push(...(await Promise.all(batch)));
    }
    // A moment in a gap is refused.
    const gapRng = targetRng.next();
    if (window.gaps.length) {
      const gap = window.gaps[Math.floor(gapRng * window.gaps.length)]!;
      const [a, b] = [Date.parse(gap.from), Date.parse(gap.to)];
      if (b - a > 2) {
        const problem = await refusedInGap(service, iso(Math.round((a + b) / 2)));
        if (problem) fail('end', 'gap-not-refused', problem);
      }
    }
    // From the bucket alone, as a host that lost everything would: once the mirror holds what the archive holds.
    const from = service.box.config.mirrorUrl!;
    const caughtUp = await waitFor(60_000, () => {
      const open = service.catalog.wal.generations().at(-1);
      const snapshot = open?.snapshot_backup_id;
      const copied = service.catalog.copies('mirror').some((c) => c.backup_id === snapshot && c.status === 'ok');
      return copied && service.catalog.wal.unmirrored(1).length === 0;
    });
    if (!caughtUp) fail('end', 'mirror-behind', 'the mirror lacked segments or the snapshot 60 s after the run settled');
    else {
      checks.push(await cliRestore(service, truth, 'latest', latest, options_(latest), 100, from));
      const inBucket = (await bucketWindow(service, from)).generations
        .map((g) => [Date.parse(g.start), Date.parse(g.end)] as const)
        .filter(([a, b]) => b > a);
      for (let i = 0; i < 4 && inBucket.length; i++) {
        const [a, b] = inBucket[Math.floor(targetRng.next() * inBucket.length)]!;
        const target: Target = { kind: 'moment', at: Math.round(a + targetRng.next() * (b - a)) };
        checks.push(await cliRestore(service, truth, iso(target.at), target, options_(target), 101 + i, from));
      }
    }
    // In place through the API, the application stopped: latest, then a moment.
    checks.push(await apiRestore(service, truth, 'latest', latest, options_(latest)));
    const inPlace = moments[Math.floor(targetRng.next() * moments.length)];
    if (inPlace !== undefined) {
      const target: Target = { kind: 'moment', at: inPlace };
      checks.push(await apiRestore(service, truth, iso(inPlace), target, options_(target)));
    }

    // Every gap the application provoked is visible: a generation begun after it, or /health's last gap.
    const generations = service.catalog.wal.generations().filter((g) => !g.reason.startsWith('rollover'));
    let visible = 0;
    for (const e of truth.events) {
      // Within 15 s: an outage the harness made (3.5 s at most) and the takeover (JOB_LOCK_DURATION) fit well inside.
      const near = (at: string) => Date.parse(at) >= e.t - slackMs && Date.parse(at) <= e.t + 15_000;
      const seen = generations.some((g) => near(g.started_at)) || monitor.health.some((h) => h.lastGap && near(h.lastGap.at));
      if (seen) visible++;
      else
        fail(
          String(e.sc),
          'invisible-gap',
          `${e.event} by the ${e.app} application at ${iso(e.t)}: no generation began after it and /health shows no gap since`,
        );
    }

    for (const c of checks) {
      const scenarioOf = (ms: number) => String(truth!.commits.filter((x) => x.ta <= ms).at(-1)?.sc ?? 0);
      const at = c.target === 'latest' ? lastCommitAt : Date.parse(c.target);
      if (c.error) fail(scenarioOf(at), 'restore-failed', `${c.via} to ${c.target}: ${c.error}`);
      const v = c.verdict;
      if (!v) continue;
      const where = v.lost ? [...new Set([v.lost.first.sc, v.lost.last.sc])].join('..') : scenarioOf(at);
      if (v.status === 'silent-loss' || v.status === 'never-existed' || v.status === 'future') {
        fail(
          where,
          v.status,
          `${c.via} to ${c.target} (restored to ${c.restoredTo ?? '?'}): ${v.detail}${c.file ? ` [kept ${c.file}]` : ''}`,
        );
      }
    }
    const judged = checks.filter((c) => c.verdict);
    const report: TortureReport = {
      seed: options.seed,
      seconds: options.seconds,
      intervalMs,
      scenarios,
      commits: truth.commits.length - 1,
      faults: injector.faults,
      restoresChecked: judged.length,
      statesMatched: judged.filter((c) => c.verdict!.status === 'matched').length,
      gapsAnnounced: window.gaps.length,
      announcedLosses: judged.filter((c) => c.verdict!.status === 'announced-loss').length,
      silentLosses: judged.filter((c) => c.verdict!.status === 'silent-loss').length,
      neverExisted: judged.filter((c) => c.verdict!.status === 'never-existed' || c.verdict!.status === 'future').length,
      provokedGaps: truth.events.length,
      visibleGaps: visible,
      window,
      generations: service.catalog.wal.generations().map((g) => ({
        id: g.id,
        startedAt: g.started_at,
        reason: g.reason,
        snapshotAt: g.snapshot_at,
        segments: g.segments,
      })),
      phases: {
        startup: (scenariosAt - startedAt) / 1_000,
        scenarios: (settledAt - scenariosAt) / 1_000,
        restores: (Date.now() - settledAt) / 1_000,
      },
      checks,
      failures,
    };
    if (failures.length || options.keep) keptDir = service.box.dir;
    report.keptDir = keptDir;
    return report;
  } catch (err) {
    keptDir = service.box.dir;
    throw err;
  } finally {
    await monitor.stop();
    if (keptDir) {
      // Keep the files for a look; stop the processes.
      service.catalog.close();
      service.s3.resume();
      await killAll();
      await service.redis.kill();
      await service.s3.stop();
      await service.hooks.close();
    } else {
      await service.stop();
    }
  }
}

/**
 * An application killed in the middle of an operation may have committed without logging it: the
 * state its database holds then goes into the log (its times: the operation's), so that a restore
 * of it is not taken for a state that never existed.
 */
function logUnloggedCommit(databasePath: string, logFile: string, sentAt: number, build: Build, scenario: number): void {
  const state = inspect(databasePath);
  if (state.seq === null || state.digest === null || readTruth(logFile).bySeq.has(state.seq)) return;
  const entry = { seq: state.seq, tb: sentAt, ta: Date.now(), d: state.digest, app: build, sc: scenario, op: 'tx', recovered: true };
  fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
}

/** Waits for the first generation with its snapshot: before it there is nothing to restore. */
async function waitForArchive(service: Service, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const g = service.catalog.wal.generations().at(-1);
    if (g?.snapshot_at) return;
    await sleep(100);
  }
  throw new Error('no WAL generation got its snapshot');
}

/** Lets the archive catch up: an archiver sync reported after `from` plus three intervals (at most 20 s). */
async function waitFor(ms: number, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
  return true;
}

async function settle(service: Service, monitor: Monitor, from: number, intervalMs: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    await monitor.sample();
    const last = monitor.archiver.at(-1);
    const open = service.catalog.wal.generations().at(-1);
    if (last && last.at > from + 3 * intervalMs && last.lagMs <= intervalMs && open?.snapshot_at) return;
    await sleep(intervalMs);
  }
}
