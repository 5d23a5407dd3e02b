/**
 * After a run: what the service announced (gaps in the window, generations begun after a gap,
 * `/health`), and the restores, each judged against the truth log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REDIS_DOWN, runCli } from '../helpers/cli.js';
import type { Fault } from './faults.js';
import { stopsArchiving } from './faults.js';
import type { Monitor } from './monitor.js';
import type { Service } from './service.js';
import { inspect, type TruthLog } from './truth.js';
import { judge, type Announcement, type Target, type Verdict } from './verdict.js';

export interface ApiWindow {
  earliest: string | null;
  latest: string | null;
  generations: { id: number; start: string; end: string; reason: string }[];
  gaps: { from: string; to: string; reason: string }[];
}

export async function fetchWindow(service: Service): Promise<ApiWindow> {
  const { status, body } = await service.api('GET', '/api/recovery-window');
  if (status !== 200) throw new Error(`GET /api/recovery-window answered ${status}: ${JSON.stringify(body)}`);
  return body as ApiWindow;
}

/** Every stretch the service said it could not restore: gaps of the window, generations begun after a gap, `/health`'s problems and lag. */
export function announcements(service: Service, window: ApiWindow, monitor: Monitor, slackMs: number): Announcement[] {
  const out: Announcement[] = window.gaps.map((g) => ({
    from: Date.parse(g.from),
    to: Date.parse(g.to),
    source: 'a gap in the window',
    reason: g.reason,
  }));
  const generations = service.catalog.wal.generations();
  for (const [i, g] of generations.entries()) {
    if (i === 0 || g.reason.startsWith('rollover')) continue;
    const before = generations[i - 1]!;
    const end = [before.last_read_at, before.snapshot_at, before.started_at]
      .filter((t): t is string => Boolean(t))
      .sort()
      .at(-1)!;
    out.push({
      from: Date.parse(end),
      to: g.snapshot_at ? Date.parse(g.snapshot_at) : Number.MAX_SAFE_INTEGER,
      source: `generation ${g.id}`,
      reason: g.reason,
    });
  }
  let run: Announcement | undefined;
  for (const s of monitor.health) {
    if (s.walProblems.length) {
      if (run) run.to = s.t;
      else out.push((run = { from: s.t, to: s.t, source: '/health', reason: s.walProblems[0]! }));
    } else run = undefined;
    // A lag beyond the precision the verdict allows: commits within it are said to be not archived yet.
    if (s.lagSeconds !== null && s.lagSeconds * 1_000 > slackMs) {
      out.push({ from: s.t - s.lagSeconds * 1_000, to: s.t, source: '/health lagSeconds', reason: `archiving ${s.lagSeconds} s behind` });
    }
  }
  return out;
}

/**
 * A moment inside an outage the harness made (the archiving worker killed, every worker down,
 * Redis gone) until the archiver reported a sync again: what the archive holds for it ends where
 * the outage began, which is no loss. The earliest such start, or undefined.
 */
export function outageCutoff(at: number, faults: Fault[], monitor: Monitor, slackMs: number): number | undefined {
  let cutoff: number | undefined;
  for (const f of faults) {
    if (!stopsArchiving(f.kind)) continue;
    const resumed = monitor.resumedAfter(f.end) ?? f.end + 15_000;
    if (at >= f.start && at <= resumed + slackMs) cutoff = Math.min(cutoff ?? Infinity, f.start - slackMs);
  }
  return cutoff;
}

export interface Checked {
  via: 'cli --output' | 'cli --from the bucket alone' | 'api (in place)';
  target: string;
  restoredTo?: string;
  verdict?: Verdict;
  /** The restore itself failed (or was refused). */
  error?: string;
  /** Kept for a failure. */
  file?: string;
  ms?: number;
}

const offlineEnv = (service: Service) => ({ ...service.box.env, REDIS_URL: REDIS_DOWN, LOG_LEVEL: 'warn' });

/**
 * `restore --to <target> --output FILE` with Redis unreachable, judged; the file is removed unless
 * the verdict is a failure. With `from` (the mirror's URL), `--from` it: the bucket read alone, as
 * on a host that lost everything, the service's catalog and BACKUP_DIR not looked at.
 */
export async function cliRestore(
  service: Service,
  truth: TruthLog,
  to: string,
  target: Target,
  judgeOptions: Parameters<typeof judge>[3],
  index: number,
  from?: string,
): Promise<Checked> {
  const dir = path.join(service.box.dir, 'restores');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `restore-${index}.db`);
  const started = Date.now();
  const via = from ? 'cli --from the bucket alone' : 'cli --output';
  const r = await runCli(offlineEnv(service), 'restore', '--to', to, '--output', file, ...(from ? ['--from', from] : []), '--json');
  if (r.code !== 0) {
    const message = (r.json as { error?: { message?: string } } | undefined)?.error?.message ?? (r.stderr || r.stdout).slice(-500);
    return { via, target: to, error: `exit ${r.code}: ${message}` };
  }
  const verdict = judge(truth, inspect(file), target, judgeOptions);
  const keep = verdict.status === 'silent-loss' || verdict.status === 'never-existed' || verdict.status === 'future';
  if (!keep) for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  const restoredTo = (r.json as { restoredTo?: string }).restoredTo;
  return { via, target: to, restoredTo, verdict, file: keep ? file : undefined, ms: Date.now() - started };
}

/** The recovery window as the bucket alone shows it (`window --from`). */
export async function bucketWindow(service: Service, from: string): Promise<ApiWindow> {
  const r = await runCli(offlineEnv(service), 'window', '--from', from, '--json');
  if (r.code !== 0) throw new Error(`window --from ${from}: exit ${r.code}: ${(r.stdout + r.stderr).slice(-500)}`);
  return r.json as ApiWindow;
}

/** `POST /api/restores`: the live database replaced (the application stopped), then judged as it is. */
export async function apiRestore(
  service: Service,
  truth: TruthLog,
  to: string,
  target: Target,
  judgeOptions: Parameters<typeof judge>[3],
): Promise<Checked> {
  const started = Date.now();
  const { status, body } = await service.api('POST', '/api/restores', { to }, 120_000);
  if (status !== 200) return { via: 'api (in place)', target: to, error: `${status}: ${JSON.stringify(body).slice(0, 500)}` };
  const verdict = judge(truth, inspect(service.databasePath), target, judgeOptions);
  const restoredTo = (body as { restoredTo?: string }).restoredTo;
  return { via: 'api (in place)', target: to, restoredTo, verdict, ms: Date.now() - started };
}

/** Whether a moment in a gap is refused, as the contract says (exit 2, the window named). */
export async function refusedInGap(service: Service, to: string): Promise<string | undefined> {
  const r = await runCli(offlineEnv(service), 'restore', '--to', to, '--output', path.join(service.box.dir, 'in-gap.db'), '--json');
  if (r.code === 2 && /gap/.test(String((r.json as { error?: { message?: string } } | undefined)?.error?.message))) return undefined;
  return `a restore to ${to}, in a gap of the window, ended with exit ${r.code}: ${(r.stdout + r.stderr).slice(0, 300)}`;
}
