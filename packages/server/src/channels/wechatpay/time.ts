import { WechatPayFormatError } from './errors.js';

/**
 * WeChat Pay v3 times are RFC 3339 with an offset; WeChat always writes `+08:00`
 * (`2025-11-23T14:05:06+08:00`), and so do we, whatever the machine's time zone.
 */

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/** `yyyy-MM-ddTHH:mm:ss+08:00`; sub-second precision is dropped (floored). */
export function formatWechatPayTime(date: Date): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('invalid date');
  const shifted = new Date(Math.floor(ms / 1000) * 1000 + BEIJING_OFFSET_MS).toISOString();
  if (!/^\d{4}-/.test(shifted)) throw new RangeError('the year must have four digits');
  return `${shifted.slice(0, 19)}+08:00`;
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
  const local = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw invalid();
  }
  let offsetMinutes = 0;
  if (zulu === undefined) {
    const offH = Number(oh);
    const offM = Number(om);
    if (offH > 23 || offM > 59) throw invalid();
    offsetMinutes = (sign === '-' ? -1 : 1) * (offH * 60 + offM);
  }
  return new Date(local - offsetMinutes * 60_000);
}
