import type { SandboxPayment } from '../ledger.js';
import type { AlipayMerchant } from './merchants.js';
import {
  beijingTime,
  fenToYuan,
  MAX_AMOUNT_FEN,
  newQrCode,
  parseBeijingTime,
  parseTimeoutExpress,
  yuanToFen,
} from './protocol.js';
import type { AlipayProduct, AlipayTrades } from './trades.js';

/**
 * The business side of the gateway methods: biz_content in, response node out. Authentication and
 * transport are the gateway's (gateway.ts).
 */

export const MSG: Readonly<Record<string, string>> = {
  '10000': 'Success',
  '10003': 'order success pay inprocess',
  '20000': 'Service Currently Unavailable',
  '40001': 'Missing Required Arguments',
  '40002': 'Invalid Arguments',
  '40004': 'Business Failed',
};

/** A refused call: `code` with `sub_code` / `sub_msg` (research §B.4). */
export class AlipayError extends Error {
  constructor(
    readonly code: '40001' | '40002' | '40004',
    readonly subCode: string,
    readonly subMsg: string,
  ) {
    super(`${code} ${subCode}: ${subMsg}`);
    this.name = 'AlipayError';
  }
}

const invalidParameter = (what: string) =>
  new AlipayError('40004', 'ACQ.INVALID_PARAMETER', `参数无效: ${what}`);
const tradeNotExist = () => new AlipayError('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在');
const tradeStatusError = () => new AlipayError('40004', 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');

/** Auth codes ending in these digits make `alipay.trade.pay` misbehave on purpose. */
export const AUTH_CODE_MARKERS = {
  /** `10003`: the buyer must confirm in the Alipay app; the trade waits for a control pay or close. */
  waitBuyerPay: '0003',
  /** `40004 ACQ.PAYMENT_AUTH_CODE_INVALID`: no trade is created. */
  invalid: '0004',
} as const;

/** User payment codes: 16–24 digits starting 25–30 (research §B.5). */
const AUTH_CODE = /^(2[5-9]|30)\d{14,22}$/;
/** Alipay documents letters, digits and `_`; the sandbox also takes `-`, as paycenter's numbers may use it. */
const OUT_TRADE_NO = /^[0-9A-Za-z_-]{1,64}$/;

/** Default validity when the merchant sets neither `time_expire` nor `timeout_express` ([unconfirmed]). */
export const DEFAULT_EXPIRY_MS: Readonly<Record<AlipayProduct, number>> = {
  precreate: 2 * 3600_000,
  bar: 2 * 3600_000,
  page: 15 * 86_400_000,
  wap: 15 * 86_400_000,
  app: 15 * 86_400_000,
};

export type Node = Record<string, unknown>;

export interface GatewayCall {
  merchant: AlipayMerchant;
  method: string;
  /** Every request parameter (query and form merged). */
  params: Readonly<Record<string, string>>;
  biz: Readonly<Record<string, unknown>>;
  now: Date;
}

// ------------------------------------------------------------------------------------ biz_content

function optionalString(biz: GatewayCall['biz'], key: string, max = 256): string | undefined {
  const value = biz[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalidParameter(`${key} must be a string`);
  if (value.length > max) throw invalidParameter(`${key} is longer than ${max} characters`);
  return value;
}

function requiredString(biz: GatewayCall['biz'], key: string, max = 256): string {
  const value = optionalString(biz, key, max);
  if (value === undefined) throw invalidParameter(`${key} is required`);
  return value;
}

function outTradeNoOf(biz: GatewayCall['biz']): string {
  const value = requiredString(biz, 'out_trade_no', 64);
  if (!OUT_TRADE_NO.test(value)) throw invalidParameter('out_trade_no');
  return value;
}

/** A yuan string → fen, in `[0.01, 100000000]`. */
function amountOf(biz: GatewayCall['biz'], key: string): number {
  const fen = yuanToFen(biz[key]);
  if (fen === null || fen < 1) throw invalidParameter(`${key} must be a yuan amount like "88.88"`);
  if (fen > MAX_AMOUNT_FEN) throw new AlipayError('40004', 'ACQ.TOTAL_FEE_EXCEED', '订单金额超过限额');
  return fen;
}

function expiryOf(biz: GatewayCall['biz'], product: AlipayProduct, now: Date): Date {
  const timeExpire = optionalString(biz, 'time_expire', 32);
  if (timeExpire !== undefined) {
    const at = parseBeijingTime(timeExpire);
    if (!at || at <= now) throw invalidParameter('time_expire');
    return at;
  }
  const timeoutExpress = optionalString(biz, 'timeout_express', 8);
  if (timeoutExpress !== undefined) {
    const at = parseTimeoutExpress(timeoutExpress, now);
    if (!at) throw invalidParameter('timeout_express');
    return at;
  }
  return new Date(now.getTime() + DEFAULT_EXPIRY_MS[product]);
}

function success(fields: Node): Node {
  return { code: '10000', msg: MSG['10000'], ...fields };
}

// --------------------------------------------------------------------------------------- methods

export class AlipayMethods {
  readonly #trades: AlipayTrades;

  constructor(trades: AlipayTrades) {
    this.#trades = trades;
  }

  /** The gateway's API methods (page, wap and app pay are opened by the browser or app, not here). */
  readonly api: Readonly<Record<string, (call: GatewayCall) => Node>> = {
    'alipay.trade.precreate': (call) => this.#precreate(call),
    'alipay.trade.pay': (call) => this.#pay(call),
    'alipay.trade.query': (call) => this.#query(call),
    'alipay.trade.close': (call) => this.#close(call),
    'alipay.trade.cancel': (call) => this.#cancel(call),
    'alipay.trade.refund': (call) => this.#refund(call),
    'alipay.trade.fastpay.refund.query': (call) => this.#refundQuery(call),
  };

  /**
   * Orders a trade, or finds the same order placed earlier. An out_trade_no reused with other
   * business parameters is `ACQ.CONTEXT_INCONSISTENT`; a paid or closed one cannot be ordered again.
   */
  order(call: GatewayCall, product: AlipayProduct, extra: { qrCode?: string } = {}): SandboxPayment {
    const outTradeNo = outTradeNoOf(call.biz);
    const amount = amountOf(call.biz, 'total_amount');
    const subject = requiredString(call.biz, 'subject');
    const body = optionalString(call.biz, 'body', 128) ?? null;
    const expireAt = expiryOf(call.biz, product, call.now);
    const fingerprint = JSON.stringify([product, amount, subject]);
    const existing = this.#trades.find(call.merchant.appId, { outTradeNo });
    if (existing) {
      if (existing.status === 'paid') throw new AlipayError('40004', 'ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
      if (existing.status === 'closed') throw new AlipayError('40004', 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
      if (this.#trades.trade(existing).fingerprint !== fingerprint) {
        throw new AlipayError('40004', 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
      }
      return existing;
    }
    return this.#trades.create({
      merchant: call.merchant,
      outTradeNo,
      product,
      method: call.method,
      subject,
      body,
      amount,
      notifyUrl: call.params.notify_url || null,
      returnUrl: call.params.return_url || null,
      quitUrl: optionalString(call.biz, 'quit_url', 400) ?? null,
      passbackParams: optionalString(call.biz, 'passback_params', 512) ?? null,
      qrCode: extra.qrCode ?? null,
      expireAt,
      fingerprint,
    });
  }

  /** page.pay (`FAST_INSTANT_TRADE_PAY`) and wap.pay (`QUICK_WAP_WAY`): the buyer opened the cashier. */
  openCashier(call: GatewayCall, product: 'page' | 'wap'): SandboxPayment {
    const productCode = optionalString(call.biz, 'product_code', 64);
    if (product === 'page' && productCode !== 'FAST_INSTANT_TRADE_PAY') {
      throw invalidParameter('product_code must be FAST_INSTANT_TRADE_PAY');
    }
    if (product === 'wap' && productCode !== undefined && productCode !== 'QUICK_WAP_WAY') {
      throw invalidParameter('product_code must be QUICK_WAP_WAY');
    }
    return this.order(call, product);
  }

  /** app.pay (`QUICK_MSECURITY_PAY`): the app handed the order string to Alipay. */
  openApp(call: GatewayCall): SandboxPayment {
    const productCode = optionalString(call.biz, 'product_code', 64);
    if (productCode !== undefined && productCode !== 'QUICK_MSECURITY_PAY') {
      throw invalidParameter('product_code must be QUICK_MSECURITY_PAY');
    }
    return this.order(call, 'app');
  }

  #precreate(call: GatewayCall): Node {
    const payment = this.order(call, 'precreate', { qrCode: newQrCode() });
    return success({ out_trade_no: payment.outTradeNo, qr_code: this.#trades.trade(payment).qrCode });
  }

  #pay(call: GatewayCall): Node {
    const scene = requiredString(call.biz, 'scene', 32);
    if (scene !== 'bar_code') throw invalidParameter('scene (the sandbox supports bar_code)');
    const authCode = requiredString(call.biz, 'auth_code', 32);
    if (!AUTH_CODE.test(authCode) || authCode.endsWith(AUTH_CODE_MARKERS.invalid)) {
      throw new AlipayError(
        '40004',
        'ACQ.PAYMENT_AUTH_CODE_INVALID',
        '支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款',
      );
    }
    const productCode = optionalString(call.biz, 'product_code', 64);
    if (productCode !== undefined && productCode !== 'FACE_TO_FACE_PAYMENT') {
      throw invalidParameter('product_code must be FACE_TO_FACE_PAYMENT');
    }
    const payment = this.order(call, 'bar');
    const trade = this.#trades.trade(payment);
    if (authCode.endsWith(AUTH_CODE_MARKERS.waitBuyerPay)) {
      return {
        code: '10003',
        msg: MSG['10003'],
        trade_no: payment.tradeNo,
        out_trade_no: payment.outTradeNo,
        buyer_logon_id: trade.buyerLogonId,
        total_amount: fenToYuan(payment.amount),
        buyer_user_id: payment.payerId,
      };
    }
    this.#trades.pay(payment);
    const paid = fenToYuan(this.#trades.paid(payment));
    return success({
      trade_no: payment.tradeNo,
      out_trade_no: payment.outTradeNo,
      buyer_logon_id: trade.buyerLogonId,
      total_amount: fenToYuan(payment.amount),
      receipt_amount: paid,
      buyer_pay_amount: paid,
      point_amount: '0.00',
      invoice_amount: paid,
      gmt_payment: beijingTime(payment.paidAt ?? call.now),
      fund_bill_list: [{ fund_channel: 'ALIPAYACCOUNT', amount: paid }],
      buyer_user_id: payment.payerId,
    });
  }

  #find(call: GatewayCall): SandboxPayment {
    const outTradeNo = optionalString(call.biz, 'out_trade_no', 64);
    const tradeNo = optionalString(call.biz, 'trade_no', 64);
    if (outTradeNo === undefined && tradeNo === undefined) throw invalidParameter('out_trade_no or trade_no');
    const payment = this.#trades.find(call.merchant.appId, { outTradeNo, tradeNo });
    if (!payment) throw tradeNotExist();
    return payment;
  }

  #query(call: GatewayCall): Node {
    const payment = this.#find(call);
    const trade = this.#trades.trade(payment);
    const paid = payment.paidAmount === null ? '0.00' : fenToYuan(payment.paidAmount);
    const buyer = this.#trades.buyerKnown(payment);
    return success({
      trade_no: payment.tradeNo,
      out_trade_no: payment.outTradeNo,
      ...(buyer ? { buyer_logon_id: trade.buyerLogonId } : {}),
      trade_status: this.#trades.status(payment),
      total_amount: fenToYuan(payment.amount),
      buyer_pay_amount: paid,
      point_amount: '0.00',
      invoice_amount: paid,
      receipt_amount: paid,
      ...(payment.paidAt ? { send_pay_date: beijingTime(payment.paidAt) } : {}),
      ...(buyer ? { buyer_user_id: payment.payerId } : {}),
    });
  }

  /** Closes an unpaid trade; closing a closed one again succeeds without a second notify. */
  #close(call: GatewayCall): Node {
    const payment = this.#find(call);
    if (payment.status === 'paid') throw tradeStatusError();
    this.#trades.close(payment);
    return success({ trade_no: payment.tradeNo, out_trade_no: payment.outTradeNo });
  }

  /** Reverses a code payment: an unpaid trade closes, a paid one is refunded in full. */
  #cancel(call: GatewayCall): Node {
    const payment = this.#find(call);
    let action = 'close';
    if (payment.status === 'paid') {
      action = 'refund';
      const remaining = this.#trades.paid(payment) - this.#trades.refunded(payment);
      if (remaining > 0) this.#trades.refund(payment, `cancel_${payment.outTradeNo}`, remaining, 'cancel');
    } else {
      this.#trades.close(payment);
    }
    return success({ trade_no: payment.tradeNo, out_trade_no: payment.outTradeNo, retry_flag: 'N', action });
  }

  /**
   * Synchronous refunds, idempotent per out_request_no (default: the out_trade_no): the first call moves
   * money (`fund_change` Y), an identical repeat does not (N); `refund_fee` is the running total.
   */
  #refund(call: GatewayCall): Node {
    const payment = this.#find(call);
    const amount = amountOf(call.biz, 'refund_amount');
    const outRequestNo = optionalString(call.biz, 'out_request_no', 64) ?? payment.outTradeNo;
    const reason = optionalString(call.biz, 'refund_reason', 256) ?? null;
    let refund = payment.refunds.find((r) => r.outRefundNo === outRequestNo);
    let fundChange = 'N';
    if (refund) {
      if (refund.amount !== amount) {
        throw new AlipayError('40004', 'ACQ.CONTEXT_INCONSISTENT', '同一退款请求号的退款金额不一致');
      }
    } else {
      if (payment.status !== 'paid') throw tradeStatusError();
      if (this.#trades.status(payment) === 'TRADE_CLOSED') {
        throw new AlipayError('40004', 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
      }
      if (amount > this.#trades.paid(payment) - this.#trades.refunded(payment)) {
        throw new AlipayError('40004', 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限');
      }
      refund = this.#trades.refund(payment, outRequestNo, amount, reason);
      fundChange = 'Y';
    }
    const trade = this.#trades.trade(payment);
    return success({
      trade_no: payment.tradeNo,
      out_trade_no: payment.outTradeNo,
      buyer_logon_id: trade.buyerLogonId,
      fund_change: fundChange,
      refund_fee: fenToYuan(this.#trades.refunded(payment)),
      gmt_refund_pay: beijingTime(refund.finishedAt ?? refund.createdAt),
      buyer_user_id: payment.payerId,
    });
  }

  /** A refund that does not exist is `10000` without refund fields (research §B.5). */
  #refundQuery(call: GatewayCall): Node {
    const payment = this.#find(call);
    const outRequestNo = optionalString(call.biz, 'out_request_no', 64) ?? payment.outTradeNo;
    const refund = payment.refunds.find((r) => r.outRefundNo === outRequestNo && r.status === 'succeeded');
    if (!refund) return success({ trade_no: payment.tradeNo, out_trade_no: payment.outTradeNo });
    const options = call.biz.query_options;
    const withTime = Array.isArray(options) && options.includes('gmt_refund_pay');
    return success({
      trade_no: payment.tradeNo,
      out_trade_no: payment.outTradeNo,
      out_request_no: refund.outRefundNo,
      total_amount: fenToYuan(payment.amount),
      refund_amount: fenToYuan(refund.amount),
      refund_status: 'REFUND_SUCCESS',
      ...(withTime ? { gmt_refund_pay: beijingTime(refund.finishedAt ?? refund.createdAt) } : {}),
    });
  }
}
