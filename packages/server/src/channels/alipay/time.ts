import { BEIJING_OFFSET_MS, beijingIsoSeconds, wallClockMs } from '../beijing-time.js';
import { AlipayFormatError } from './errors.js';

/**
 * Alipay writes times as `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no daylight saving), in
 * requests (`timestamp`, `time_expire`) and in notifies (`gmt_payment`, `notify_time`, …).
 * Formatting never looks at the machine's time zone (alipay-sdk does: research §C.1, pitfall 4).
 */

/** `yyyy-MM-dd HH:mm:ss` in UTC+8; sub-second precision is dropped (floored). */
export function formatAlipayTime(date: Date): string {
  return beijingIsoSeconds(date).replace('T', ' ');
}

const ALIPAY_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/;

/** Reads `yyyy-MM-dd HH:mm:ss` (optionally `.SSS`, as in `gmt_refund`) as Beijing time. */
export function parseAlipayTime(value: string): Date {
  const m = ALIPAY_TIME.exec(value);
  const invalid = () =>
    new AlipayFormatError('invalid_time', `not an Alipay time: ${JSON.stringify(value.slice(0, 40))}`);
  if (!m) throw invalid();
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const millis = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'));
  const local = wallClockMs(year, month, day, hour, minute, second, millis);
  if (local === undefined) throw invalid();
  return new Date(local - BEIJING_OFFSET_MS);
}
