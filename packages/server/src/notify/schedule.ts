import { MAX_SCHEDULE_DELAY_SECONDS, MAX_SCHEDULE_STEPS } from '../validation.js';

/**
 * When a merchant webhook is retried: seconds after the previous try, the first try being immediate.
 * The default is the reference system's (15s, 15s, 30s, 3m, 30m, 30m, 30m, 1h: nine tries over ~4 h);
 * an app may set its own.
 */
export const DEFAULT_NOTIFY_SCHEDULE: readonly number[] = [15, 15, 30, 180, 1800, 1800, 1800, 3600];

let configuredDefault: readonly number[] = DEFAULT_NOTIFY_SCHEDULE;

/**
 * The schedule of apps without their own: DEFAULT_NOTIFY_SCHEDULE unless the process configured
 * another (PAYCENTER_NOTIFY_SCHEDULE) with `configureDefaultNotifySchedule`.
 */
export function defaultNotifySchedule(): readonly number[] {
  return configuredDefault;
}

/** Sets the process-wide default schedule once at start-up; `null` restores the built-in one. */
export function configureDefaultNotifySchedule(schedule: readonly number[] | null): void {
  configuredDefault = schedule === null ? DEFAULT_NOTIFY_SCHEDULE : Object.freeze([...schedule]);
}

export function maxAttemptsOf(schedule: readonly number[]): number {
  return schedule.length + 1;
}

/**
 * Seconds to wait after try number `attemptNo` (1 = the first, immediate try) before the next one.
 * A schedule shortened after a task was written (or a task given extra tries by hand) keeps using
 * its last delay.
 */
export function delayAfterAttempt(schedule: readonly number[], attemptNo: number): number {
  const delay = schedule[Math.max(0, attemptNo - 1)] ?? schedule.at(-1);
  return delay ?? 60;
}

const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Parses a schedule written as delays separated by commas: plain seconds (`15,15,30,180`) or with a
 * unit (`15s,15s,30s,3m,30m,1h`). Throws `fail(message)`; config passes one that makes a ConfigError
 * (the message reads after the variable name: "must list …").
 */
export function parseNotifySchedule(
  raw: string,
  fail: (message: string) => Error = (message) => new RangeError(`notify schedule ${message}`),
): number[] {
  const parts = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  const example = 'e.g. "15,15,30,180,1800" or "15s,15s,30s,3m,30m,1h"';
  if (parts.length < 1 || parts.length > MAX_SCHEDULE_STEPS) {
    throw fail(`must list 1 to ${MAX_SCHEDULE_STEPS} delays separated by commas (${example})`);
  }
  return parts.map((part) => {
    const match = /^(\d{1,9})\s*([smhd]?)$/i.exec(part);
    const seconds = match
      ? Number(match[1]) * (UNIT_SECONDS[(match[2] ?? '').toLowerCase()] ?? 1)
      : Number.NaN;
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SCHEDULE_DELAY_SECONDS) {
      throw fail(
        `has an invalid delay ${JSON.stringify(part)}: each must be 1 s to 7 days, in seconds or with s/m/h/d (${example})`,
      );
    }
    return seconds;
  });
}
