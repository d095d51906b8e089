/** Both providers keep time in Beijing (UTC+8, no daylight saving), whatever the machine's zone. */
export const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/** `yyyy-MM-ddTHH:mm:ss` of `date` in Beijing time; sub-second precision is dropped (floored). */
export function beijingIsoSeconds(date: Date): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('invalid date');
  const shifted = new Date(Math.floor(ms / 1000) * 1000 + BEIJING_OFFSET_MS).toISOString();
  if (!/^\d{4}-/.test(shifted)) throw new RangeError('the year must have four digits');
  return shifted.slice(0, 19);
}

/** The UTC epoch milliseconds of a wall-clock time read as UTC; undefined for calendar-invalid parts (02-30, 24:00). */
export function wallClockMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  millis: number,
): number | undefined {
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const check = new Date(ms);
  const valid =
    check.getUTCFullYear() === year &&
    check.getUTCMonth() === month - 1 &&
    check.getUTCDate() === day &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59;
  return valid ? ms : undefined;
}
