import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What a merchant's backend does with paycenter's signatures, written from the merchant's side (and
 * independently of paycenter's own code, so each checks the other in tests).
 */

/** The HMAC key of a Standard Webhooks secret: the bytes the base64 text after `whsec_` decodes to. */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  return Buffer.from(encoded, 'base64');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export type Verdict = { verified: true } | { verified: false; reason: string };

/** How far a webhook's or return URL's timestamp may be from now. */
export const TOLERANCE_SECONDS = 300;

/**
 * Standard Webhooks: `webhook-signature` lists `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
 * signatures (space-separated, one per active secret); one matching is enough.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  now: Date,
): Verdict {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  const signatures = header('webhook-signature');
  if (!id || !timestamp || !signatures) return { verified: false, reason: 'missing webhook-* headers' };
  if (!/^\d{1,12}$/.test(timestamp)) return { verified: false, reason: 'malformed webhook-timestamp' };
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    return { verified: false, reason: 'webhook-timestamp is too far from now' };
  }
  const expected = createHmac('sha256', secretKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');
  for (const entry of signatures.split(' ')) {
    const [version, signature] = entry.split(',');
    if (version === 'v1' && signature !== undefined && sameText(signature, expected))
      return { verified: true };
  }
  return { verified: false, reason: 'no signature matches' };
}

/**
 * The signed return URL: `sig` = base64url HMAC-SHA256 of `orderId.merchantOrderId.status.ts` with the
 * same key as the webhooks.
 */
export function verifyReturn(secret: string, query: Record<string, string | undefined>, now: Date): Verdict {
  const { orderId, merchantOrderId, status, ts, sig } = query;
  if (!orderId || !merchantOrderId || !status || !ts || !sig) {
    return { verified: false, reason: 'orderId, merchantOrderId, status, ts and sig are required' };
  }
  if (!/^\d{1,12}$/.test(ts)) return { verified: false, reason: 'malformed ts' };
  const expected = createHmac('sha256', secretKey(secret))
    .update(`${orderId}.${merchantOrderId}.${status}.${ts}`)
    .digest('base64url');
  if (!sameText(sig, expected)) return { verified: false, reason: 'the signature does not match' };
  if (Math.abs(now.getTime() / 1000 - Number(ts)) > TOLERANCE_SECONDS) {
    return { verified: false, reason: 'the link is too old (ts is more than 5 minutes from now)' };
  }
  return { verified: true };
}
