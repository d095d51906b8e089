import { AlipayFormatError } from './errors.js';

/**
 * Alipay amounts are yuan strings with at most two decimals ("88.88", "0.01", "100"); we hold integer
 * fen. The conversion is done on the digits, never through a float ("0.29" * 100 is 28.999999999999996).
 */

const YUAN = /^(0|[1-9]\d*)(?:\.(\d{1,2}))?$/;

/**
 * "12.34" → 1234, "12.3" → 1230, "12" → 1200, "0.00" → 0. Refuses signs, exponents, spaces, leading
 * zeros ("01.00"), a bare or trailing point (".5", "1."), a third decimal, and values beyond 2^53 fen.
 * Range rules (Alipay's 0.01–100000000 for a payment) are the caller's.
 */
export function yuanToFen(value: string): number {
  const m = typeof value === 'string' ? YUAN.exec(value) : null;
  if (!m) {
    throw new AlipayFormatError(
      'invalid_amount',
      `not an amount in yuan: ${JSON.stringify(String(value).slice(0, 32))}`,
    );
  }
  const fen = BigInt(m[1] as string) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
  if (fen > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new AlipayFormatError('invalid_amount', 'the amount is too large');
  }
  return Number(fen);
}

/** 1234 → "12.34", 5 → "0.05", 0 → "0.00". Refuses negative, fractional and unsafe numbers. */
export function fenToYuan(fen: number): string {
  if (!Number.isSafeInteger(fen) || fen < 0) {
    throw new AlipayFormatError('invalid_amount', `not a whole, non-negative number of fen: ${String(fen)}`);
  }
  const yuan = Math.floor(fen / 100);
  const cents = fen % 100;
  return `${yuan}.${cents < 10 ? '0' : ''}${cents}`;
}
