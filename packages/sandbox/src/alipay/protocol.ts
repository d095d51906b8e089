import { createSign, createVerify, type KeyObject, randomInt } from 'node:crypto';

/**
 * The Alipay OpenAPI (v2 `gateway.do`) wire rules the simulator follows, written from the research notes
 * (channels.md §B), independently of paycenter's client: times, amounts, the string-to-sign and the
 * signed response text.
 */

// ---------------------------------------------------------------------------------------------- time

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/** `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8, no daylight saving), whatever the host's zone. */
export function beijingTime(date: Date): string {
  const shifted = new Date(Math.floor(date.getTime() / 1000) * 1000 + BEIJING_OFFSET_MS).toISOString();
  return `${shifted.slice(0, 10)} ${shifted.slice(11, 19)}`;
}

/** `yyyy-MM-dd HH:mm:ss.SSS` in Beijing time, as in `gmt_refund`. */
export function beijingTimeMillis(date: Date): string {
  const shifted = new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString();
  return `${shifted.slice(0, 10)} ${shifted.slice(11, 23)}`;
}

/** `yyyyMMdd` and `HHmmss` of a Beijing time, for identifiers. */
function beijingParts(date: Date): { day: string; clock: string } {
  const text = beijingTime(date);
  return { day: text.slice(0, 10).replaceAll('-', ''), clock: text.slice(11).replaceAll(':', '') };
}

const ALIPAY_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Reads a strict `yyyy-MM-dd HH:mm:ss` Beijing time; `null` when malformed or not a real date. */
export function parseBeijingTime(value: string): Date | null {
  const m = ALIPAY_TIME.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return null;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(utc);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return null;
  }
  return new Date(utc - BEIJING_OFFSET_MS);
}

/**
 * `timeout_express`: `1m`–`15d` with unit `m`, `h` or `d`, or `1c` (until midnight, Beijing time).
 * Returns the expiry, or `null` when malformed or out of range.
 */
export function parseTimeoutExpress(value: string, from: Date): Date | null {
  if (value === '1c') {
    const beijing = new Date(from.getTime() + BEIJING_OFFSET_MS);
    const midnight = Date.UTC(beijing.getUTCFullYear(), beijing.getUTCMonth(), beijing.getUTCDate() + 1);
    return new Date(midnight - BEIJING_OFFSET_MS);
  }
  const m = /^([1-9]\d{0,5})([mhd])$/.exec(value);
  if (!m) return null;
  const minutes = Number(m[1]) * (m[2] === 'm' ? 1 : m[2] === 'h' ? 60 : 1440);
  if (minutes > 15 * 1440) return null;
  return new Date(from.getTime() + minutes * 60_000);
}

// -------------------------------------------------------------------------------------------- amounts

const YUAN = /^(0|[1-9]\d{0,11})(?:\.(\d{1,2}))?$/;

/**
 * A yuan string with at most two decimals ("88.88", "88.8", "88") → integer fen, on the digits alone
 * (never through a float). `null` for anything else: signs, exponents, spaces, leading zeros, a bare or
 * trailing point, a third decimal.
 */
export function yuanToFen(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = YUAN.exec(value);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** 1234 → "12.34", 5 → "0.05". */
export function fenToYuan(fen: number): string {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

/** Alipay's payment range: 0.01 to 100,000,000.00 yuan. */
export const MAX_AMOUNT_FEN = 10_000_000_000;

// ------------------------------------------------------------------------------------------ signing

/**
 * The official string-to-sign (Java SDK `getSignContent`): every parameter except the excluded ones
 * (`sign` for requests; `sign` and `sign_type` for notifies and sync returns), empty values left out,
 * keys sorted by code unit (all keys are ASCII, so this is byte order), `key=value` joined with `&`,
 * raw values without URL-encoding.
 */
export function signContent(params: Readonly<Record<string, string>>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((key) => !exclude.includes(key) && params[key] !== '' && params[key] !== undefined)
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

export const REQUEST_EXCLUDED = ['sign'] as const;
export const NOTIFY_EXCLUDED = ['sign', 'sign_type'] as const;

/** SHA256withRSA over the UTF-8 bytes, base64. */
export function rsa2Sign(content: string, privateKey: KeyObject): string {
  return createSign('RSA-SHA256').update(content, 'utf8').sign(privateKey, 'base64');
}

export function rsa2Verify(content: string, signature: string, publicKey: KeyObject): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return createVerify('RSA-SHA256').update(content, 'utf8').verify(publicKey, signature, 'base64');
  } catch {
    return false;
  }
}

// ----------------------------------------------------------------------------------------- responses

/**
 * JSON text of a response node as the gateway emits it. Like the real gateway, forward slashes are
 * escaped (`"https:\/\/qr.alipay.com\/bax…"`); the signature covers exactly this text, so a client
 * that verifies the raw bytes it received passes, and one that re-serialises or unescapes fails.
 * JSON.stringify never writes a backslash before `/`, and `/` only occurs inside strings, so the
 * replacement keeps the text valid JSON with the same value.
 */
export function nodeText(node: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(node).replaceAll('/', '\\/');
}

/** `alipay.trade.precreate` → `alipay_trade_precreate_response`. */
export function responseKey(method: string): string {
  return `${method.replaceAll('.', '_')}_response`;
}

/**
 * The whole response body, built as a string so the signed bytes are the bytes sent:
 * `{"<key>":<node>,"sign":"<base64>"}`, or without `sign` when no key signs it (gateway-level errors).
 */
export function responseBody(
  key: string,
  node: Readonly<Record<string, unknown>>,
  signer?: KeyObject,
): string {
  const text = nodeText(node);
  if (!signer) return `{"${key}":${text}}`;
  return `{"${key}":${text},"sign":"${rsa2Sign(text, signer)}"}`;
}

// --------------------------------------------------------------------------------------- identifiers

function digits(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += String(randomInt(10));
  return out;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function alnum(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += ALNUM[randomInt(ALNUM.length)];
  return out;
}

/** An APPID: 16 digits starting `2021`. */
export const newAppId = (): string => `2021${digits(12)}`;
/** A partner / user id: `2088` + 12 digits (seller_id, buyer_id). */
export const newPartnerId = (): string => `2088${digits(12)}`;
/** A trade_no: `yyyyMMdd22001` + 15 digits (28 digits, as real ones look). */
export const newTradeNo = (now: Date): string => `${beijingParts(now).day}22001${digits(15)}`;
/** A notify_id: `yyyyMMdd00222HHmmss` + 15 digits. */
export function newNotifyId(now: Date): string {
  const { day, clock } = beijingParts(now);
  return `${day}00222${clock}${digits(15)}`;
}
/** A face-to-face QR payload. It only means something to this sandbox. */
export const newQrCode = (): string => `https://qr.alipay.com/bax0${alnum(20)}`;
