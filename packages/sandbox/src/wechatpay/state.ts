import type { KeyObject } from 'node:crypto';
import type { SandboxPayment, SandboxRefund } from '../ledger.js';
import { beijingCompact, beijingRfc3339, randomChars, randomDigits } from './crypto.js';

/** One simulated merchant: what WeChat Pay knows about it. */
export interface Merchant {
  mchid: string;
  appid: string;
  apiV3Key: string;
  /** The serial number of the merchant API certificate, naming `merchantPublicKey`. */
  serialNo: string;
  merchantPublicKey: KeyObject;
  /** The "WeChat Pay public key" pair: WeChat signs responses and callbacks with its private half. */
  platformPrivateKey: KeyObject;
  platformPublicKeyId: string;
}

export type TradeType = 'NATIVE' | 'JSAPI' | 'MWEB' | 'APP';

/** The prepay path segment each trade type is created through. */
export const TRADE_TYPE_BY_PATH: Record<string, TradeType> = {
  native: 'NATIVE',
  jsapi: 'JSAPI',
  h5: 'MWEB',
  app: 'APP',
};

export interface WechatRefundDetails {
  notifyUrl: string | null;
  /** The refund request's fields, for the idempotency check on `out_refund_no`. */
  fingerprint: string;
}

/** WeChat-specific fields of a ledger payment, kept in `SandboxPayment.details`. */
export interface WechatDetails {
  appid: string;
  tradeType: TradeType;
  attach: string | null;
  /** Canonical JSON of the first prepay request's body and trade type: re-entry must match it. */
  fingerprint: string;
  /** The current prepay credential (prepay_id, code_url or h5_url) and when it was issued. */
  prepayId: string;
  credential: string;
  credentialIssuedAt: Date;
  bankType: string;
  refunds: Record<string, WechatRefundDetails>;
}

export function details(payment: SandboxPayment): WechatDetails {
  return payment.details as unknown as WechatDetails;
}

/** How long a prepay credential is valid: prepay_id and code_url 2 hours, h5_url 5 minutes (§A.5). */
export function credentialLifetimeMs(tradeType: TradeType): number {
  return tradeType === 'MWEB' ? 5 * 60_000 : 2 * 3600_000;
}

// ------------------------------------------------------------------------------------------ identifiers

export function newMchid(): string {
  return `19${randomDigits(8)}`;
}

export function newAppid(): string {
  return `wx${randomChars(16, '0123456789abcdef')}`;
}

export function newPublicKeyId(mchid: string, now: Date): string {
  return `PUB_KEY_ID_01${mchid}${beijingCompact(now).day}${randomDigits(14)}`;
}

/** `wx` + time + random, 36 characters, like `wx201410272009395522657a690389285100`. */
export function newPrepayId(now: Date): string {
  return `wx${beijingCompact(now).second.slice(2)}${randomChars(22, '0123456789abcdef')}`;
}

/** 28 digits, e.g. `4200000000202511230000000001`. */
export function newTransactionId(now: Date): string {
  return `4200000000${beijingCompact(now).day}${randomDigits(10)}`;
}

/** 29 digits, e.g. `50300000002025112312345678901`. */
export function newRefundId(now: Date): string {
  return `503000000${beijingCompact(now).day}${randomDigits(12)}`;
}

/** A 28-character openid, e.g. `oUpF8uMuAJO_M2pxb1Q9zNjWeS6o`. */
export function newOpenid(): string {
  return `o${randomChars(27, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-')}`;
}

/** `EV-` + 19 digits, like `EV-2018022511223320873`. */
export function newEventId(now: Date): string {
  return `EV-${beijingCompact(now).second}${randomDigits(5)}`;
}

/** JSON with sorted keys, for comparing requests whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------- views

/** Closes a waiting payment whose time has run out (checked lazily whenever it is read). */
export function expireIfDue(payment: SandboxPayment, now: Date): void {
  if (payment.status === 'waiting' && payment.expireAt && payment.expireAt.getTime() <= now.getTime()) {
    payment.status = 'closed';
    payment.closedAt = payment.expireAt;
  }
}

export type TradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'REFUND';

const TRADE_STATE_DESC: Record<TradeState, string> = {
  NOTPAY: '订单未支付',
  SUCCESS: '支付成功',
  CLOSED: '订单已关闭',
  REFUND: '转入退款',
};

export function tradeState(payment: SandboxPayment): TradeState {
  if (payment.status === 'waiting') return 'NOTPAY';
  if (payment.status === 'closed') return 'CLOSED';
  return payment.refunds.some((r) => r.status !== 'closed') ? 'REFUND' : 'SUCCESS';
}

/**
 * The transaction object of the order query and (with `state` SUCCESS) of the payment callback
 * (§A.4/A.5). Payment facts (transaction_id, trade_type, payer, success_time, attach…) appear only
 * once the order is paid, as WeChat answers for NOTPAY and CLOSED orders.
 */
export function transactionView(
  payment: SandboxPayment,
  state: TradeState = tradeState(payment),
): Record<string, unknown> {
  const wx = details(payment);
  const base = {
    appid: wx.appid,
    mchid: payment.merchantId,
    out_trade_no: payment.outTradeNo,
    trade_state: state,
    trade_state_desc: TRADE_STATE_DESC[state],
  };
  if (payment.status !== 'paid' || payment.paidAt === null) {
    return { ...base, amount: { total: payment.amount, currency: 'CNY', payer_currency: 'CNY' } };
  }
  const paid = payment.paidAmount ?? payment.amount;
  return {
    ...base,
    transaction_id: payment.tradeNo,
    trade_type: wx.tradeType,
    bank_type: wx.bankType,
    attach: wx.attach ?? '',
    success_time: beijingRfc3339(payment.paidAt),
    payer: { openid: payment.payerId },
    amount: { total: paid, payer_total: paid, currency: 'CNY', payer_currency: 'CNY' },
  };
}

export type RefundState = 'PROCESSING' | 'SUCCESS' | 'ABNORMAL' | 'CLOSED';

export const REFUND_STATE: Record<SandboxRefund['status'], RefundState> = {
  processing: 'PROCESSING',
  succeeded: 'SUCCESS',
  abnormal: 'ABNORMAL',
  closed: 'CLOSED',
};

const USER_RECEIVED_ACCOUNT = '支付用户零钱';

/** The refund object of the refund call and the refund query (§A.5). */
export function refundView(payment: SandboxPayment, refund: SandboxRefund): Record<string, unknown> {
  const total = payment.paidAmount ?? payment.amount;
  return {
    refund_id: refund.refundId,
    out_refund_no: refund.outRefundNo,
    transaction_id: payment.tradeNo,
    out_trade_no: payment.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: USER_RECEIVED_ACCOUNT,
    ...(refund.status === 'succeeded' && refund.finishedAt
      ? { success_time: beijingRfc3339(refund.finishedAt) }
      : {}),
    create_time: beijingRfc3339(refund.createdAt),
    status: REFUND_STATE[refund.status],
    funds_account: 'AVAILABLE',
    amount: {
      total,
      refund: refund.amount,
      from: [],
      payer_total: total,
      payer_refund: refund.amount,
      settlement_refund: refund.amount,
      settlement_total: total,
      discount_refund: 0,
      currency: 'CNY',
    },
    promotion_detail: [],
  };
}

/** The decrypted resource of a REFUND.* callback (§A.4). */
export function refundResource(payment: SandboxPayment, refund: SandboxRefund): Record<string, unknown> {
  const total = payment.paidAmount ?? payment.amount;
  return {
    mchid: payment.merchantId,
    out_trade_no: payment.outTradeNo,
    transaction_id: payment.tradeNo,
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_status: REFUND_STATE[refund.status],
    ...(refund.status === 'succeeded' && refund.finishedAt
      ? { success_time: beijingRfc3339(refund.finishedAt) }
      : {}),
    user_received_account: USER_RECEIVED_ACCOUNT,
    amount: { total, refund: refund.amount, payer_total: total, payer_refund: refund.amount },
  };
}
