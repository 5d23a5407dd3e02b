/**
 * The verdict on one restored database, from the truth log alone: was it a state that existed,
 * no later than the target, and does it hold every commit it must? A pure function, so the test
 * can show that it fails when it should.
 */
import type { Commit, FileState, TruthLog } from './truth.js';

/** A stretch of time in which the service said it could not restore everything (ms). */
export interface Announcement {
  from: number;
  to: number;
  /** Where it was said: `window gap`, `generation`, `/health`, `wal.gap alert`. */
  source: string;
  reason: string;
}

export type Target = { kind: 'latest'; settledAt: number } | { kind: 'moment'; at: number };

export type Status = 'matched' | 'never-existed' | 'future' | 'announced-loss' | 'silent-loss';

export interface Verdict {
  status: Status;
  seq: number | null;
  detail: string;
  /** The commits it should have held and does not. */
  lost?: { first: Commit; last: Commit; count: number };
  /** The announcement that covers the loss. */
  announcedBy?: Announcement;
}

export interface JudgeOptions {
  intervalMs: number;
  /** Commits this many intervals before the target may be missing (the archive's precision): 2. */
  slackIntervals?: number;
  /**
   * For a target inside an outage the harness provoked (a worker killed, Redis gone), the moment
   * from which commits may be missing: what the archive could not have read yet.
   */
  cutoffOverride?: number;
  announcements: Announcement[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export function describeCommit(c: Commit): string {
  return `commit ${c.seq} (${c.app}, scenario ${c.sc}, ${c.op}${c.jm ? ` in journal_mode=${c.jm}` : ''}, at ${iso(c.ta)})`;
}

export function judge(truth: TruthLog, state: FileState, target: Target, options: JudgeOptions): Verdict {
  const slack = (options.slackIntervals ?? 2) * options.intervalMs;
  const seq = state.seq;
  if (state.error || state.integrity !== 'ok') {
    return { status: 'never-existed', seq, detail: `integrity_check: ${state.error ?? state.integrity}` };
  }
  if (seq === null) return { status: 'never-existed', seq, detail: 'no sequence number in meta' };
  const commit = truth.bySeq.get(seq);
  if (!commit)
    return { status: 'never-existed', seq, detail: `sequence ${seq} was never committed (the log ends at ${truth.commits.at(-1)?.seq})` };
  if (commit.d !== state.digest) {
    return {
      status: 'never-existed',
      seq,
      detail: `a state that never existed: sequence ${seq} with rows whose digest is ${state.digest}, where ${describeCommit(commit)} committed ${commit.d} (${state.rows} rows)`,
    };
  }
  if (target.kind === 'moment' && commit.tb > target.at) {
    return { status: 'future', seq, detail: `${describeCommit(commit)} began committing after the target ${iso(target.at)}` };
  }
  const cutoff = target.kind === 'latest' ? target.settledAt - slack : (options.cutoffOverride ?? target.at - slack);
  const due = truth.commits.filter((c) => c.ta <= cutoff).at(-1);
  if (!due || seq >= due.seq) return { status: 'matched', seq, detail: `${describeCommit(commit)}` };

  const lostCommits = truth.commits.filter((c) => c.seq > seq && c.seq <= due.seq);
  const first = lostCommits[0]!;
  const last = lostCommits.at(-1)!;
  const lost = { first, last, count: lostCommits.length };
  const announcedBy = options.announcements.find((a) => a.from <= last.ta + slack && a.to >= first.tb - slack);
  const what =
    `restored ${describeCommit(commit)}; missing ${lostCommits.length} commit(s) ${first.seq}..${last.seq} ` +
    `(${iso(first.ta)} to ${iso(last.ta)}, scenario(s) ${[...new Set(lostCommits.map((c) => c.sc))].join(',')}, ` +
    `ops ${[...new Set(lostCommits.map((c) => c.op + (c.jm ? `/${c.jm}` : '')))].join(',')}) committed before ${iso(cutoff)}`;
  return announcedBy
    ? { status: 'announced-loss', seq, detail: `${what}; announced by ${announcedBy.source}: ${announcedBy.reason}`, lost, announcedBy }
    : { status: 'silent-loss', seq, detail: `${what}; nothing announced it`, lost };
}
