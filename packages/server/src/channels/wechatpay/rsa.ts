import { type KeyObject, randomBytes, sign, verify } from 'node:crypto';

/** SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256), base64: the one signature WeChat Pay v3 uses. */
export function rsaSha256Sign(message: string | Uint8Array, privateKey: KeyObject): string {
  const data = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return sign('sha256', data, privateKey).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True when `signature` is canonical base64 (Node's own decoder silently skips junk characters). */
export function isBase64(signature: string): boolean {
  return signature.length > 0 && BASE64.test(signature);
}

/** False (never an exception) for a wrong key, a wrong message or a signature that is not base64. */
export function rsaSha256Verify(
  message: string | Uint8Array,
  signature: string,
  publicKey: KeyObject,
): boolean {
  if (!isBase64(signature)) return false;
  const data = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  try {
    return verify('sha256', data, publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

const NONCE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A random string of `[0-9A-Za-z]` (32 characters, as WeChat's own samples use), without modulo bias. */
export function randomNonce(length = 32): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      // 248 = 4 × 62: bytes at or above it would favour the first characters.
      if (byte < 248 && out.length < length) out += NONCE_ALPHABET[byte % 62];
    }
  }
  return out;
}

/** Unix seconds of a date, the form every WeChat Pay v3 timestamp takes (10 digits, never milliseconds). */
export function unixSeconds(now: Date): number {
  const ms = now.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('invalid date');
  return Math.floor(ms / 1000);
}
