import {
  createCipheriv,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomInt,
  sign,
  verify,
} from 'node:crypto';

/**
 * WeChat Pay API v3 cryptography from the server's side (research §A.3, §A.4), on node:crypto alone.
 * Deliberately independent of paycenter's client: the tests check both against wechatpay-axios-plugin,
 * so a misunderstanding shared by the two cannot pass unnoticed.
 */

export const SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';
/** The accepted clock difference of a request's timestamp, either direction. */
export const TIMESTAMP_WINDOW_SECONDS = 300;

export interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8, `-----BEGIN PRIVATE KEY-----`, as `apiclient_key.pem`. */
  privatePem: string;
  /** SPKI, `-----BEGIN PUBLIC KEY-----`, as the WeChat Pay public key file. */
  publicPem: string;
}

export function generateRsaKeyPair(): RsaKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** SHA256withRSA (RSASSA-PKCS1-v1_5), base64. */
export function rsaSign(message: string | Buffer, privateKey: KeyObject): string {
  return sign(
    'sha256',
    typeof message === 'string' ? Buffer.from(message, 'utf8') : message,
    privateKey,
  ).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** False, never an exception, for a wrong key, a wrong message or a signature that is not strict base64. */
export function rsaVerify(message: Buffer, signature: string, publicKey: KeyObject): boolean {
  if (signature === '' || !BASE64.test(signature)) return false;
  try {
    return verify('sha256', message, publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n` over the raw bytes: five lines, the last one included. */
export function requestMessage(
  method: string,
  url: string,
  timestamp: string,
  nonce: string,
  body: Buffer,
): Buffer {
  return Buffer.concat([
    Buffer.from(`${method}\n${url}\n${timestamp}\n${nonce}\n`, 'utf8'),
    body,
    Buffer.from('\n'),
  ]);
}

/** `TIMESTAMP\nNONCE\nBODY\n`: what a response's or callback's `Wechatpay-Signature` covers. */
export function responseMessage(timestamp: string, nonce: string, body: string): string {
  return `${timestamp}\n${nonce}\n${body}\n`;
}

export interface Authorization {
  mchid: string;
  nonce: string;
  timestamp: string;
  serialNo: string;
  signature: string;
}

const AUTH_PARAM = /^\s*([A-Za-z_]+)="([^"]*)"\s*$/;
const AUTH_NAMES = {
  mchid: 'mchid',
  nonce_str: 'nonce',
  timestamp: 'timestamp',
  serial_no: 'serialNo',
  signature: 'signature',
} as const;

/**
 * Parses `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
 * The pairs may come in any order; an unknown scheme, a missing or repeated pair gives null.
 */
export function parseAuthorization(header: string): Authorization | null {
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space) !== SIGNATURE_TYPE) return null;
  const found: Partial<Record<keyof Authorization, string>> = {};
  for (const part of header.slice(space + 1).split(',')) {
    const match = AUTH_PARAM.exec(part);
    if (!match) return null;
    const name = AUTH_NAMES[match[1] as keyof typeof AUTH_NAMES];
    if (!name) continue; // unknown pairs are ignored, as new ones may appear
    if (found[name] !== undefined) return null;
    found[name] = match[2] ?? '';
  }
  const { mchid, nonce, timestamp, serialNo, signature } = found;
  if (!mchid || !nonce || !timestamp || !serialNo || !signature) return null;
  return { mchid, nonce, timestamp, serialNo, signature };
}

/**
 * AEAD_AES_256_GCM as WeChat encrypts callback resources: key = the APIv3 key's UTF-8 bytes, IV = the
 * 12-character nonce's bytes, AAD = `associated_data`; base64 of ciphertext followed by the 16-byte tag.
 */
export function aesGcmEncrypt(
  apiV3Key: string,
  nonce: string,
  associatedData: string,
  plaintext: string,
): string {
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64',
  );
}

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const HEX_UPPER = '0123456789ABCDEF';

/** Uniformly random characters of `alphabet` (no modulo bias). */
export function randomChars(length: number, alphabet = ALPHANUMERIC): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export const randomDigits = (length: number): string => randomChars(length, DIGITS);
export const randomHexUpper = (length: number): string => randomChars(length, HEX_UPPER);
export const randomHexLower = (length: number): string =>
  randomBytes(Math.ceil(length / 2))
    .toString('hex')
    .slice(0, length);

/** Unix seconds. */
export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

const BEIJING_OFFSET_MS = 8 * 3600 * 1000;

/** RFC 3339 in Beijing time, as WeChat always writes it: `2025-11-23T14:05:06+08:00`. */
export function beijingRfc3339(date: Date): string {
  return `${new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString().slice(0, 19)}+08:00`;
}

/** `yyyyMMdd` and `yyyyMMddHHmmss` in Beijing time, for identifiers. */
export function beijingCompact(date: Date): { day: string; second: string } {
  const iso = new Date(date.getTime() + BEIJING_OFFSET_MS).toISOString();
  const second = iso.slice(0, 19).replace(/[-T:]/g, '');
  return { day: second.slice(0, 8), second };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** A strict RFC 3339 date-time with an offset, or null. */
export function parseRfc3339(value: string): Date | null {
  const match = RFC3339.exec(value);
  if (!match) return null;
  const [, year, month, day, hour, minute, second] = match.map(Number) as number[];
  if (
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined
  ) {
    return null;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  const check = new Date(Date.UTC(year ?? 0, month - 1, day));
  if (check.getUTCDate() !== day) return null; // 2025-02-30
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}
