import { invalidRequest } from './errors.js';

/**
 * Rules shared by the HTTP API and the CLI. Schemas check shapes; these check meaning, so a call that
 * bypasses HTTP (the CLI, a job) is held to the same rules.
 */
export const MAX_URL_LENGTH = 2048;

export function checkHttpUrl(field: string, value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalidRequest(field, 'must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidRequest(field, 'must be an http(s) URL');
  }
  if (value.length > MAX_URL_LENGTH)
    throw invalidRequest(field, `must be at most ${MAX_URL_LENGTH} characters`);
  if (parsed.username || parsed.password) throw invalidRequest(field, 'must not contain credentials');
  return value;
}

export const MAX_SCHEDULE_STEPS = 30;
export const MAX_SCHEDULE_DELAY_SECONDS = 7 * 24 * 3600;

/** A notify retry schedule: delays in seconds after the first, immediate try. */
export function checkNotifySchedule(field: string, value: readonly number[]): number[] {
  if (value.length < 1 || value.length > MAX_SCHEDULE_STEPS) {
    throw invalidRequest(field, `must hold 1 to ${MAX_SCHEDULE_STEPS} delays`);
  }
  for (const delay of value) {
    if (!Number.isInteger(delay) || delay < 1 || delay > MAX_SCHEDULE_DELAY_SECONDS) {
      throw invalidRequest(
        field,
        `each delay must be a whole number of seconds from 1 to ${MAX_SCHEDULE_DELAY_SECONDS}`,
      );
    }
  }
  return [...value];
}

export function checkName(field: string, value: string, max = 100): string {
  const trimmed = value.trim();
  if (trimmed.length < 1 || trimmed.length > max)
    throw invalidRequest(field, `must be 1 to ${max} characters`);
  return trimmed;
}

/** Ids in URLs are decimal strings; anything else cannot name a row, so it is "not found". */
export function isRowId(value: string): boolean {
  return /^[1-9]\d{0,18}$/.test(value) && BigInt(value) <= 9223372036854775807n;
}
