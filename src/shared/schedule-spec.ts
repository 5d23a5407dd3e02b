import { CronExpressionParser } from 'cron-parser';

/**
 * How a recurring job is scheduled, written as one string so it fits an environment variable and
 * a JSON field alike: `off`, a number of milliseconds between runs, or a cron pattern (five
 * fields, or six with seconds first) such as `0 3 * * 0` for Sundays at 03:00.
 */
export type ScheduleSpec = { kind: 'off' } | { kind: 'every'; every: number } | { kind: 'cron'; pattern: string };

export const MIN_SCHEDULE_EVERY = 1_000;

/** Parses a schedule string; throws an Error whose message says what was expected. */
export function parseSchedule(raw: string): ScheduleSpec {
  const value = raw.trim();
  if (value === '' || /^(off|false|none)$/i.test(value)) return { kind: 'off' };
  if (/^\d+$/.test(value)) {
    const every = Number(value);
    if (every < MIN_SCHEDULE_EVERY) throw new Error(`expected at least ${MIN_SCHEDULE_EVERY} ms between runs`);
    return { kind: 'every', every };
  }
  const fields = value.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) throw new Error('expected off, milliseconds, or a cron pattern such as "0 3 * * 0"');
  try {
    // BullMQ reads patterns with the same parser, so what passes here is what it will run.
    CronExpressionParser.parse(value, { strict: false });
  } catch (err) {
    throw new Error(`not a valid cron pattern (${(err as Error).message})`, { cause: err });
  }
  return { kind: 'cron', pattern: value };
}

/** The canonical string of a schedule, as stored and shown. */
export function formatSchedule(spec: ScheduleSpec): string {
  return spec.kind === 'off' ? 'off' : spec.kind === 'every' ? String(spec.every) : spec.pattern;
}

export function isValidSchedule(raw: string): boolean {
  try {
    parseSchedule(raw);
    return true;
  } catch {
    return false;
  }
}
