import { beijingIsoSeconds, wallClockMs } from '../beijing-time.js';
import { WechatPayFormatError } from './errors.js';

/**
 * WeChat Pay v3 times are RFC 3339 with an offset; WeChat always writes `+08:00`
 * (`2025-11-23T14:05:06+08:00`), and so do we, whatever the machine's time zone.
 */

/** `yyyy-MM-ddTHH:mm:ss+08:00`; sub-second precision is dropped (floored). */
export function formatWechatPayTime(date: Date): string {
  return `${beijingIsoSeconds(date)}+08:00`;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Reads an RFC 3339 date-time with any offset (`+08:00`, `Z`, `-05:30`) and optional fractions of a
 * second (kept to the millisecond). Calendar-invalid values (`02-30`, `24:00:00`) are refused.
 */
export function parseWechatPayTime(value: string): Date {
  const m = RFC3339.exec(value);
  const invalid = () =>
    new WechatPayFormatError('invalid_time', `not an RFC 3339 time: ${JSON.stringify(value.slice(0, 40))}`);
  if (!m) throw invalid();
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const millis = frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3));
  const local = wallClockMs(year, month, day, hour, minute, second, millis);
  if (local === undefined) throw invalid();
  let offsetMinutes = 0;
  if (zulu === undefined) {
    const offH = Number(oh);
    const offM = Number(om);
    if (offH > 23 || offM > 59) throw invalid();
    offsetMinutes = (sign === '-' ? -1 : 1) * (offH * 60 + offM);
  }
  return new Date(local - offsetMinutes * 60_000);
}
