import { describe, expect, it } from 'vitest';
import { beijingIsoSeconds, wallClockMs } from '../../src/channels/beijing-time.js';
import { newChannelNo } from '../../src/channels/channel-no.js';

describe('numbers sent to the channels', () => {
  it('are the prefix, the Beijing second and 12 random base62 characters: 27 characters both providers take', () => {
    // 23:59:59.999 UTC is 07:59:59 the next day in Beijing.
    const now = new Date('2026-03-01T23:59:59.999Z');
    const numbers = Array.from({ length: 200 }, () => newChannelNo('P', now));
    for (const no of numbers) expect(no).toMatch(/^P20260302075959[0-9A-Za-z]{12}$/);
    expect(new Set(numbers).size).toBe(200);
    expect(newChannelNo('R', now)).toMatch(/^R20260302075959[0-9A-Za-z]{12}$/);
  });
});

describe('Beijing time', () => {
  it('formats any instant in UTC+8 to the second, floored', () => {
    expect(beijingIsoSeconds(new Date('2026-12-31T16:00:00.999Z'))).toBe('2027-01-01T00:00:00');
    expect(beijingIsoSeconds(new Date('2024-02-28T16:30:00.000Z'))).toBe('2024-02-29T00:30:00');
  });

  it('refuses an invalid date and a year without four digits', () => {
    expect(() => beijingIsoSeconds(new Date('nonsense'))).toThrow('invalid date');
    expect(() => beijingIsoSeconds(new Date('+010000-01-01T00:00:00Z'))).toThrow('four digits');
  });

  it.each([
    ['February 30', [2026, 2, 30, 0, 0, 0, 0]],
    ['February 29 of a common year', [2026, 2, 29, 12, 0, 0, 0]],
    ['24:00', [2026, 3, 1, 24, 0, 0, 0]],
    ['minute 60', [2026, 3, 1, 23, 60, 0, 0]],
    ['second 60', [2026, 3, 1, 23, 59, 60, 0]],
    ['month 13', [2026, 13, 1, 0, 0, 0, 0]],
    ['a two-digit year (Date.UTC would read 1999)', [99, 1, 1, 0, 0, 0, 0]],
  ])('reads %s as no time at all', (_what, parts) => {
    const [year, month, day, hour, minute, second, millis] = parts as number[];
    expect(wallClockMs(year!, month!, day!, hour!, minute!, second!, millis!)).toBeUndefined();
  });

  it('reads a valid wall-clock time, leap day included', () => {
    expect(wallClockMs(2024, 2, 29, 23, 59, 59, 500)).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 500));
  });
});
