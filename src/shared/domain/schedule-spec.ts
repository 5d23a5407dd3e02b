import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

/**
 * How a recurring job is scheduled, written as one string so it fits an environment variable and
 * a JSON field alike: `off`, a number of milliseconds between runs, or a cron pattern (five
 * fields, or six with seconds first) such as `0 3 * * 0` for Sundays at 03:00.
 */
export type ScheduleSpec = { kind: 'off' } | { kind: 'every'; every: number } | { kind: 'cron'; pattern: string };

export const MIN_SCHEDULE_EVERY = 1_000;

/**
 * The verification sweep queues a full verify of every kept backup each time it fires; any
 * faster than this and the sweeps overlap, so the verify queue only ever grows.
 */
export const MIN_VERIFY_PERIOD = 60_000;

/**
 * A pattern must fire within this horizon. `0 0 29 2 *` (leap days) still does; a pattern such as
 * `0 0 31 2,4,6,9,11 *` never does, and BullMQ would silently keep whatever schedule it had.
 */
const NEXT_RUN_HORIZON_MS = 5 * 366 * 24 * 3_600_000;

/**
 * Consecutive runs compared when measuring a pattern's shortest period. A pattern with more than
 * one second per minute shows two runs within one minute by its third run, and minute-level
 * patterns cannot fire more often than once a minute, so a handful is exact for a one-minute floor.
 */
const PERIOD_SAMPLE = 10;

const describePeriod = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} minute(s)` : `${ms / 1_000} second(s)`);

/**
 * Parses a schedule string; throws an Error whose message says what was expected. `minPeriod` is
 * the shortest gap allowed between two runs, checked for milliseconds and cron patterns alike.
 */
export function parseSchedule(raw: string, { minPeriod = MIN_SCHEDULE_EVERY, now = new Date() } = {}): ScheduleSpec {
  const value = raw.trim();
  if (value === '' || /^(off|false|none)$/i.test(value)) return { kind: 'off' };
  if (/^\d+$/.test(value)) {
    const every = Number(value);
    if (every < minPeriod) throw new Error(`expected at least ${minPeriod} ms between runs`);
    return { kind: 'every', every };
  }
  const fields = value.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) throw new Error('expected off, milliseconds, or a cron pattern such as "0 3 * * 0"');
  const runs = nextRuns(value, now, PERIOD_SAMPLE);
  if (!runs.length) throw new Error(`the cron pattern "${value}" never runs (no run within the next 5 years)`);
  for (let i = 1; i < runs.length; i++) {
    const gap = runs[i]! - runs[i - 1]!;
    if (gap < minPeriod) {
      throw new Error(
        `the cron pattern "${value}" runs ${describePeriod(gap)} apart; expected at least ${describePeriod(minPeriod)} between runs`,
      );
    }
  }
  return { kind: 'cron', pattern: value };
}

/** Up to `count` run times (ms) of a cron pattern after `now`, within the horizon. */
function nextRuns(pattern: string, now: Date, count: number): number[] {
  let interval;
  try {
    // BullMQ reads patterns with the same parser, so what passes here is what it will run.
    interval = CronExpressionParser.parse(pattern, {
      strict: false,
      currentDate: now,
      endDate: new Date(now.getTime() + NEXT_RUN_HORIZON_MS),
    });
  } catch (err) {
    throw new Error(`not a valid cron pattern (${(err as Error).message})`, { cause: err });
  }
  const runs: number[] = [];
  while (runs.length < count) {
    try {
      runs.push(interval.next().getTime());
    } catch {
      // Past the horizon, or cron-parser gave up searching (its loop limit): no more runs.
      break;
    }
  }
  return runs;
}

/** The canonical string of a schedule, as stored and shown. */
export function formatSchedule(spec: ScheduleSpec): string {
  return spec.kind === 'off' ? 'off' : spec.kind === 'every' ? String(spec.every) : spec.pattern;
}

/**
 * The one validator of a schedule field, for the environment (config.ts) and the API
 * (settings.ts) alike: yields the canonical string, or an issue saying what was expected.
 */
export function scheduleSchema(minPeriod: number) {
  return z
    .string()
    .max(200)
    .transform((v, ctx) => {
      try {
        return formatSchedule(parseSchedule(v, { minPeriod }));
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });
}

/** VERIFY_SCHEDULE and the `verifySchedule` setting. */
export const verifyScheduleSchema = scheduleSchema(MIN_VERIFY_PERIOD);
