import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../crypto/tokens.js';
import { webhookSecretKey } from '../notify/sender.js';

/**
 * The signed way back to the merchant. When the paying browser leaves the cashier for the return URL,
 * paycenter appends `orderId`, `merchantOrderId`, `status`, `ts` (Unix seconds) and `sig`:
 *
 *   sig = base64url( HMAC-SHA256( key, `${orderId}.${merchantOrderId}.${status}.${ts}` ) )
 *
 * where `key` is the app's webhook secret as Standard Webhooks uses it: the bytes that the base64 text
 * after `whsec_` decodes to. The merchant's return page recomputes it (docs/cashier.md) and, since a
 * browser can replay or forge a URL, treats a verified `status=paid` as "show the good news", never as
 * the proof of payment: the webhook (or GET /api/v1/orders/:id) is.
 */
export const RETURN_PARAMS = ['orderId', 'merchantOrderId', 'status', 'ts', 'sig'] as const;

export interface ReturnFacts {
  orderId: string;
  merchantOrderId: string;
  status: string;
}

export function returnSignature(secret: string, facts: ReturnFacts, ts: number): string {
  return createHmac('sha256', webhookSecretKey(secret))
    .update(`${facts.orderId}.${facts.merchantOrderId}.${facts.status}.${ts}`)
    .digest('base64url');
}

/** The merchant's return URL with the signed facts appended (replacing any parameters of the same names). */
export function signedReturnUrl(base: string, secret: string, facts: ReturnFacts, now: Date): string {
  const url = new URL(base);
  const ts = Math.floor(now.getTime() / 1000);
  url.searchParams.set('orderId', facts.orderId);
  url.searchParams.set('merchantOrderId', facts.merchantOrderId);
  url.searchParams.set('status', facts.status);
  url.searchParams.set('ts', String(ts));
  url.searchParams.set('sig', returnSignature(secret, facts, ts));
  return url.toString();
}

export type ReturnCheck =
  | { valid: true; facts: ReturnFacts; ts: number }
  | { valid: false; reason: 'missing_parameters' | 'bad_signature' | 'stale' };

/**
 * What a merchant's return page does, for tests and for merchants in TypeScript: checks the signature
 * (in constant time) and that `ts` is within `toleranceSeconds` of now.
 */
export function verifyReturnUrl(
  url: string | URL,
  secret: string,
  options: { now?: Date; toleranceSeconds?: number } = {},
): ReturnCheck {
  const params = new URL(url).searchParams;
  const [orderId, merchantOrderId, status, tsText, sig] = RETURN_PARAMS.map((name) => params.get(name));
  if (!orderId || !merchantOrderId || !status || !tsText || !sig || !/^\d{1,12}$/.test(tsText)) {
    return { valid: false, reason: 'missing_parameters' };
  }
  const ts = Number(tsText);
  const facts = { orderId, merchantOrderId, status };
  if (!constantTimeEqual(returnSignature(secret, facts, ts), sig)) {
    return { valid: false, reason: 'bad_signature' };
  }
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - ts) > (options.toleranceSeconds ?? 600)) return { valid: false, reason: 'stale' };
  return { valid: true, facts, ts };
}
