import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Uniform random base62 text (rejection sampling, so no character is more likely than another). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += BASE62[byte % 62];
    }
  }
  return out;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** `sk_` + 40 base62 characters (~238 bits). The first 12 characters are kept as a visible prefix. */
export function newApiKey(): { key: string; prefix: string; hash: string } {
  const key = `sk_${randomBase62(40)}`;
  return { key, prefix: key.slice(0, 12), hash: sha256Hex(key) };
}

export const API_KEY_PATTERN = /^sk_[0-9A-Za-z]{40}$/;

/** A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Authorises the paying browser to read one order's status. */
export function newClientToken(): string {
  return randomBase62(32);
}

export function newAdminToken(): string {
  return `adm_${randomBase62(40)}`;
}
