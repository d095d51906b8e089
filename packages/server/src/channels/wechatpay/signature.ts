import type { KeyObject } from 'node:crypto';
import { WechatPaySignatureError } from './errors.js';
import type { WechatPayPlatformKeys } from './keys.js';
import { isBase64, randomNonce, rsaSha256Sign, rsaSha256Verify, unixSeconds } from './rsa.js';

/**
 * WeChat Pay API v3 signatures (research §A.3), both directions:
 * - merchant → WeChat: the request signature in `Authorization` (we sign; the sandbox verifies);
 * - WeChat → merchant: the `Wechatpay-*` headers on responses and callbacks (the sandbox signs; we verify).
 * Every message is built over the raw bytes as sent; nothing is re-serialised.
 */

export const WECHATPAY_SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';
/** WeChat sends signatures with this prefix to check that merchants really verify. */
export const WECHATPAY_SIGNTEST_PREFIX = 'WECHATPAY/SIGNTEST/';
/** The accepted clock difference, either direction (the official SDKs use 5 minutes). */
export const WECHATPAY_TIMESTAMP_WINDOW_SECONDS = 300;

/** A body exactly as it goes on the wire: a UTF-8 string or the raw bytes. `''` when there is none. */
export type WireBody = string | Uint8Array;

function bodyBytes(body: WireBody): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
}

function checkLine(what: string, value: string): void {
  if (value.includes('\n')) throw new TypeError(`${what} must not contain a line feed`);
}

/**
 * The path and query of a URL exactly as a client sends them (`/v3/…?mchid=…`): what line 2 of the
 * request signature holds. A base URL's own path (e.g. the sandbox's `/__sandbox/wechatpay`) is part of it.
 */
export function canonicalUrl(url: URL | string): string {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  return `${parsed.pathname}${parsed.search}`;
}

// ---------------------------------------------------------------------------------------------- request

/** `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`: five lines, the last one included, each ending in `\n`. */
export function requestSignatureMessage(
  method: string,
  url: string,
  timestamp: string | number,
  nonce: string,
  body: WireBody = '',
): Buffer {
  if (!url.startsWith('/')) throw new TypeError('the signed URL is the path and query only, starting with /');
  checkLine('the URL', url);
  checkLine('the nonce', nonce);
  const head = `${method.toUpperCase()}\n${url}\n${timestamp}\n${nonce}\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), bodyBytes(body), Buffer.from('\n')]);
}

/** The fields of an `Authorization: WECHATPAY2-SHA256-RSA2048 …` header. */
export interface WechatPayAuthorization {
  mchId: string;
  nonce: string;
  timestamp: string;
  serialNo: string;
  signature: string;
}

const AUTH_VALUE = /^[^"\\\r\n]*$/;

export function formatAuthorization(auth: WechatPayAuthorization): string {
  for (const [name, value] of Object.entries(auth)) {
    if (!AUTH_VALUE.test(value)) throw new TypeError(`${name} cannot be put in an Authorization header`);
  }
  return (
    `${WECHATPAY_SIGNATURE_TYPE} mchid="${auth.mchId}",nonce_str="${auth.nonce}",` +
    `timestamp="${auth.timestamp}",serial_no="${auth.serialNo}",signature="${auth.signature}"`
  );
}

const AUTH_PARAM = /\s*([A-Za-z_]+)="([^"]*)"\s*(?:,|$)/y;
const AUTH_FIELDS = {
  mchid: 'mchId',
  nonce_str: 'nonce',
  timestamp: 'timestamp',
  serial_no: 'serialNo',
  signature: 'signature',
} as const;

/**
 * Reads an `Authorization` header (the sandbox's side). The pairs may come in any order; each of the
 * five must appear exactly once and be non-empty; unknown pairs are ignored.
 */
export function parseAuthorization(header: string): WechatPayAuthorization {
  const malformed = (why: string) => new WechatPaySignatureError('malformed_header', `Authorization: ${why}`);
  const prefix = `${WECHATPAY_SIGNATURE_TYPE} `;
  if (!header.startsWith(prefix)) throw malformed(`the scheme is not ${WECHATPAY_SIGNATURE_TYPE}`);
  const params = header.slice(prefix.length);
  const found = new Map<string, string>();
  let at = 0;
  while (at < params.length) {
    AUTH_PARAM.lastIndex = at;
    const m = AUTH_PARAM.exec(params);
    if (!m || m[0] === '') throw malformed('expected comma-separated key="value" pairs');
    const [, key = '', value = ''] = m;
    if (found.has(key)) throw malformed(`${key} appears twice`);
    found.set(key, value);
    at = AUTH_PARAM.lastIndex;
  }
  const out: Partial<WechatPayAuthorization> = {};
  for (const [wire, field] of Object.entries(AUTH_FIELDS)) {
    const value = found.get(wire);
    if (value === undefined || value === '') throw malformed(`${wire} is missing`);
    out[field] = value;
  }
  return out as WechatPayAuthorization;
}

export interface SignRequestInput {
  mchId: string;
  /** The merchant certificate serial number that names `privateKey`. */
  serialNo: string;
  privateKey: KeyObject;
  method: string;
  /** Path and query exactly as sent; see {@link canonicalUrl}. */
  url: string;
  /** The exact body bytes sent; omit (or `''`) for GET/DELETE and bodiless requests. */
  body?: WireBody;
  now: Date;
  /** Random when omitted. */
  nonce?: string;
}

export interface SignedRequest {
  authorization: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** Signs a request to WeChat Pay and builds its `Authorization` header. */
export function signWechatPayRequest(input: SignRequestInput): SignedRequest {
  const timestamp = String(unixSeconds(input.now));
  const nonce = input.nonce ?? randomNonce();
  const message = requestSignatureMessage(input.method, input.url, timestamp, nonce, input.body ?? '');
  const signature = rsaSha256Sign(message, input.privateKey);
  const authorization = formatAuthorization({
    mchId: input.mchId,
    nonce,
    timestamp,
    serialNo: input.serialNo,
    signature,
  });
  return { authorization, timestamp, nonce, signature };
}

const TEN_DIGITS = /^\d{10}$/;

function checkWindow(timestamp: string, now: Date, windowSeconds: number, where: string): number {
  if (!TEN_DIGITS.test(timestamp)) {
    throw new WechatPaySignatureError('malformed_header', `${where} is not a Unix time in seconds`);
  }
  const seconds = Number(timestamp);
  const skew = seconds - unixSeconds(now);
  if (Math.abs(skew) > windowSeconds) {
    throw new WechatPaySignatureError(
      'stale_timestamp',
      `${where} is ${Math.abs(skew)} s ${skew < 0 ? 'behind' : 'ahead of'} our clock (window ±${windowSeconds} s)`,
    );
  }
  return seconds;
}

export interface VerifyRequestInput {
  method: string;
  /** The raw path and query as received (e.g. Node's `req.url`, not a router-rewritten path). */
  url: string;
  /** The raw body bytes as received. */
  body: WireBody;
  authorization: string | undefined;
  /** The merchant public key registered for (mchid, serial_no), or undefined when there is none. */
  resolveKey: (mchId: string, serialNo: string) => KeyObject | undefined;
  now: Date;
  windowSeconds?: number;
}

/** Verifies a merchant's signed request (what WeChat Pay does on receipt, and so the sandbox). */
export function verifyWechatPayRequest(input: VerifyRequestInput): WechatPayAuthorization {
  if (input.authorization === undefined || input.authorization === '') {
    throw new WechatPaySignatureError('missing_header', 'the Authorization header is missing');
  }
  const auth = parseAuthorization(input.authorization);
  checkWindow(
    auth.timestamp,
    input.now,
    input.windowSeconds ?? WECHATPAY_TIMESTAMP_WINDOW_SECONDS,
    'timestamp',
  );
  const key = input.resolveKey(auth.mchId, auth.serialNo);
  if (key === undefined) {
    throw new WechatPaySignatureError(
      'unknown_serial',
      `no key for mchid ${auth.mchId}, serial_no ${auth.serialNo}`,
    );
  }
  if (!isBase64(auth.signature))
    throw new WechatPaySignatureError('malformed_header', 'signature is not base64');
  const message = requestSignatureMessage(input.method, input.url, auth.timestamp, auth.nonce, input.body);
  if (!rsaSha256Verify(message, auth.signature, key)) {
    throw new WechatPaySignatureError('bad_signature', 'the request signature does not verify');
  }
  return auth;
}

// --------------------------------------------------------------------------------- response and callback

/** `TIMESTAMP\nNONCE\nBODY\n`; an empty body (204) gives `ts\nnonce\n\n`. */
export function responseSignatureMessage(
  timestamp: string | number,
  nonce: string,
  body: WireBody = '',
): Buffer {
  checkLine('the nonce', nonce);
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), bodyBytes(body), Buffer.from('\n')]);
}

/** The headers WeChat Pay puts on every signed response and callback. */
export type WechatPaySignedHeaders = {
  'Wechatpay-Timestamp': string;
  'Wechatpay-Nonce': string;
  'Wechatpay-Signature': string;
  'Wechatpay-Serial': string;
  'Wechatpay-Signature-Type': typeof WECHATPAY_SIGNATURE_TYPE;
};

export interface SignResponseInput {
  /** The exact body bytes that will be written; `''` for 204. */
  body: WireBody;
  /** The platform private key (the sandbox's "WeChat Pay key"). */
  privateKey: KeyObject;
  /** What goes in `Wechatpay-Serial`: a platform certificate serial or a `PUB_KEY_ID_…`. */
  serial: string;
  now: Date;
  nonce?: string;
}

/** Signs a response or callback as WeChat Pay does (the sandbox's side). */
export function signWechatPayResponse(input: SignResponseInput): WechatPaySignedHeaders {
  const timestamp = String(unixSeconds(input.now));
  const nonce = input.nonce ?? randomNonce();
  if (!AUTH_VALUE.test(input.serial) || input.serial === '') throw new TypeError('invalid serial');
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': rsaSha256Sign(
      responseSignatureMessage(timestamp, nonce, input.body),
      input.privateKey,
    ),
    'Wechatpay-Serial': input.serial,
    'Wechatpay-Signature-Type': WECHATPAY_SIGNATURE_TYPE,
  };
}

/** Node's `IncomingHttpHeaders`, a plain object (any case), or a fetch/undici `Headers`. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | number | undefined>>;

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | number | undefined>>;
  let value: string | readonly string[] | number | undefined;
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== name) continue;
    if (value !== undefined)
      throw new WechatPaySignatureError('malformed_header', `${name} appears more than once`);
    value = record[key];
  }
  if (value === undefined || typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (value.length > 1)
    throw new WechatPaySignatureError('malformed_header', `${name} appears more than once`);
  return value[0];
}

export interface VerifyResponseInput {
  headers: HeaderSource;
  /** The raw body exactly as received: bytes, or the string decoded from them. Never re-serialised JSON. */
  body: WireBody;
  platformKeys: WechatPayPlatformKeys;
  now: Date;
  windowSeconds?: number;
}

export interface VerifiedWechatPayMessage {
  /** The `Wechatpay-Serial` whose key verified the message. */
  serial: string;
  timestamp: number;
  nonce: string;
}

/**
 * Verifies a response or callback from WeChat Pay. Refuses, in this order: missing headers, the
 * `WECHATPAY/SIGNTEST/` probe (before any crypto), a timestamp outside ±5 minutes, an unknown
 * `Wechatpay-Serial`, and a signature that does not match the raw body.
 */
export function verifyWechatPaySignature(input: VerifyResponseInput): VerifiedWechatPayMessage {
  const timestamp = readHeader(input.headers, 'wechatpay-timestamp');
  const nonce = readHeader(input.headers, 'wechatpay-nonce');
  const signature = readHeader(input.headers, 'wechatpay-signature');
  const serial = readHeader(input.headers, 'wechatpay-serial');
  if (!timestamp || !nonce || !signature || !serial) {
    const missing = Object.entries({
      'Wechatpay-Timestamp': timestamp,
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Signature': signature,
      'Wechatpay-Serial': serial,
    })
      .filter(([, value]) => !value)
      .map(([name]) => name);
    throw new WechatPaySignatureError('missing_header', `missing ${missing.join(', ')}`);
  }
  if (signature.startsWith(WECHATPAY_SIGNTEST_PREFIX)) {
    throw new WechatPaySignatureError('signtest_probe', 'a WECHATPAY/SIGNTEST/ signature probe');
  }
  const seconds = checkWindow(
    timestamp,
    input.now,
    input.windowSeconds ?? WECHATPAY_TIMESTAMP_WINDOW_SECONDS,
    'Wechatpay-Timestamp',
  );
  const key = input.platformKeys.get(serial);
  if (key === undefined) {
    throw new WechatPaySignatureError('unknown_serial', `no WeChat Pay key for Wechatpay-Serial ${serial}`);
  }
  if (!isBase64(signature))
    throw new WechatPaySignatureError('malformed_header', 'Wechatpay-Signature is not base64');
  if (!rsaSha256Verify(responseSignatureMessage(timestamp, nonce, input.body), signature, key)) {
    throw new WechatPaySignatureError('bad_signature', `the signature does not verify with key ${serial}`);
  }
  return { serial, timestamp: seconds, nonce };
}
