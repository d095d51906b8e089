import { randomBase62 } from '../crypto/tokens.js';
import { beijingIsoSeconds } from './beijing-time.js';

/**
 * A number we send a channel (out_trade_no `P…`, out_refund_no `R…`): the prefix, the Beijing time to
 * the second, and 12 random base62 characters — 27 characters of [0-9A-Za-z], valid for WeChat (6–32
 * of [0-9A-Za-z_-*|]) and Alipay (≤ 64 of letters, digits, _), readable and sortable by time.
 */
export function newChannelNo(prefix: 'P' | 'R', now: Date): string {
  const stamp = beijingIsoSeconds(now).replace(/\D/g, '');
  return `${prefix}${stamp}${randomBase62(12)}`;
}
