import { ALIPAY_NOTIFY_SCHEDULE } from '../callbacks.js';
import type { SandboxPayment, SandboxRefund } from '../ledger.js';
import { type SandboxContext, SandboxError } from '../provider.js';
import type { AlipayMerchant, AlipayMerchants } from './merchants.js';
import {
  beijingTime,
  beijingTimeMillis,
  fenToYuan,
  NOTIFY_EXCLUDED,
  newNotifyId,
  newPartnerId,
  newTradeNo,
  rsa2Sign,
  signContent,
} from './protocol.js';

/** Alipay's trade states (`TRADE_FINISHED` is never reached: the sandbox has no refund window). */
export type TradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_CLOSED' | 'TRADE_FINISHED';

/** The product a trade was ordered through; stored as `SandboxPayment.product`. */
export type AlipayProduct = 'precreate' | 'page' | 'wap' | 'app' | 'bar';

/** Alipay-specific facts of a trade, also visible as `SandboxPayment.details`. */
export type AlipayTrade = {
  appId: string;
  sellerId: string;
  method: string;
  body: string | null;
  returnUrl: string | null;
  quitUrl: string | null;
  passbackParams: string | null;
  /** Masked buyer account, as Alipay shows it. */
  buyerLogonId: string;
  qrCode: string | null;
  /** The business parameters that must match when the same out_trade_no is ordered again. */
  fingerprint: string;
  gmtClose: Date | null;
};

export interface NewTrade {
  merchant: AlipayMerchant;
  outTradeNo: string;
  product: AlipayProduct;
  method: string;
  subject: string;
  body: string | null;
  amount: number;
  notifyUrl: string | null;
  returnUrl: string | null;
  quitUrl: string | null;
  passbackParams: string | null;
  qrCode: string | null;
  expireAt: Date;
  fingerprint: string;
}

type NotifyFields = Record<string, string | null | undefined>;

/**
 * The trades of every sandbox Alipay merchant, kept in the shared ledger (provider `alipay`,
 * merchantId = app_id), and the asynchronous notifies they cause.
 */
export class AlipayTrades {
  readonly #context: SandboxContext;
  readonly #merchants: AlipayMerchants;
  readonly #byTradeNo = new Map<string, SandboxPayment>();
  readonly #trades = new WeakMap<SandboxPayment, AlipayTrade>();

  constructor(context: SandboxContext, merchants: AlipayMerchants) {
    this.#context = context;
    this.#merchants = merchants;
  }

  trade(payment: SandboxPayment): AlipayTrade {
    const trade = this.#trades.get(payment);
    if (!trade) throw new Error(`payment ${payment.outTradeNo} is not an Alipay trade`);
    return trade;
  }

  /** A trade of this app by out_trade_no and/or trade_no (both must agree when both are given). */
  find(
    appId: string,
    ids: { outTradeNo?: string | undefined; tradeNo?: string | undefined },
  ): SandboxPayment | undefined {
    let payment: SandboxPayment | undefined;
    if (ids.tradeNo !== undefined) {
      payment = this.#byTradeNo.get(ids.tradeNo);
      if (
        payment &&
        (payment.merchantId !== appId ||
          (ids.outTradeNo !== undefined && payment.outTradeNo !== ids.outTradeNo))
      ) {
        payment = undefined;
      }
    } else if (ids.outTradeNo !== undefined) {
      payment = this.#context.ledger.get('alipay', appId, ids.outTradeNo);
    }
    if (payment) this.refresh(payment);
    return payment;
  }

  byTradeNo(tradeNo: string): SandboxPayment | undefined {
    const payment = this.#byTradeNo.get(tradeNo);
    if (payment) this.refresh(payment);
    return payment;
  }

  create(input: NewTrade): SandboxPayment {
    const now = this.#context.now();
    const buyerId = newPartnerId();
    const trade: AlipayTrade = {
      appId: input.merchant.appId,
      sellerId: input.merchant.sellerId,
      method: input.method,
      body: input.body,
      returnUrl: input.returnUrl,
      quitUrl: input.quitUrl,
      passbackParams: input.passbackParams,
      buyerLogonId: `san***@${buyerId.slice(-4)}.sandbox`,
      qrCode: input.qrCode,
      fingerprint: input.fingerprint,
      gmtClose: null,
    };
    let tradeNo = newTradeNo(now);
    while (this.#byTradeNo.has(tradeNo)) tradeNo = newTradeNo(now);
    const payment = this.#context.ledger.add({
      provider: 'alipay',
      merchantId: input.merchant.appId,
      outTradeNo: input.outTradeNo,
      tradeNo,
      product: input.product,
      subject: input.subject,
      amount: input.amount,
      paidAmount: null,
      status: 'waiting',
      notifyUrl: input.notifyUrl,
      payerId: buyerId,
      expireAt: input.expireAt,
      createdAt: now,
      paidAt: null,
      closedAt: null,
      refunds: [],
      details: trade,
    });
    this.#trades.set(payment, trade);
    this.#byTradeNo.set(tradeNo, payment);
    return payment;
  }

  /** A precreated QR code has no buyer until someone pays it; every other product starts with one. */
  buyerKnown(payment: SandboxPayment): boolean {
    return payment.product !== 'precreate' || payment.paidAt !== null;
  }

  /** Fen refunded so far. */
  refunded(payment: SandboxPayment): number {
    return payment.refunds.reduce((sum, r) => sum + (r.status === 'succeeded' ? r.amount : 0), 0);
  }

  /** What the payer paid (the reported amount when a test simulated a mismatch). */
  paid(payment: SandboxPayment): number {
    return payment.paidAmount ?? payment.amount;
  }

  /**
   * Alipay's view of the ledger state: a fully refunded trade is `TRADE_CLOSED` while the ledger keeps
   * it `paid` (the money did move; the refunds are listed beside it).
   */
  status(payment: SandboxPayment): TradeStatus {
    if (payment.status === 'waiting') return 'WAIT_BUYER_PAY';
    if (payment.status === 'closed') return 'TRADE_CLOSED';
    return this.refunded(payment) >= this.paid(payment) ? 'TRADE_CLOSED' : 'TRADE_SUCCESS';
  }

  /** A waiting trade past its expiry closes the moment anyone looks at it, with its TRADE_CLOSED notify. */
  refresh(payment: SandboxPayment): void {
    if (payment.status === 'waiting' && payment.expireAt && this.#context.now() >= payment.expireAt) {
      this.close(payment);
    }
  }

  /** The payer pays: TRADE_SUCCESS and its notify. */
  pay(payment: SandboxPayment, amount?: number): void {
    this.refresh(payment);
    if (payment.status !== 'waiting') {
      throw new SandboxError(409, 'not_payable', `payment ${payment.outTradeNo} is ${this.status(payment)}`);
    }
    payment.status = 'paid';
    payment.paidAmount = amount ?? payment.amount;
    payment.paidAt = this.#context.now();
    this.#notify(payment, 'payment', this.#paidFields(payment, 'TRADE_SUCCESS'));
  }

  /** An unpaid trade closes (API close, timeout, the payer gave up): TRADE_CLOSED and its notify. */
  close(payment: SandboxPayment): void {
    if (payment.status !== 'waiting') return;
    const now = this.#context.now();
    const trade = this.trade(payment);
    payment.status = 'closed';
    payment.closedAt = now;
    trade.gmtClose = now;
    this.#notify(payment, 'payment', {
      ...this.#commonTradeFields(payment),
      trade_status: 'TRADE_CLOSED',
      total_amount: fenToYuan(payment.amount),
      gmt_close: beijingTime(now),
    });
  }

  /** A new refund of a paid trade (the caller checked amount and state): recorded, notified. */
  refund(
    payment: SandboxPayment,
    outRequestNo: string,
    amount: number,
    reason: string | null,
  ): SandboxRefund {
    const now = this.#context.now();
    const refund: SandboxRefund = {
      outRefundNo: outRequestNo,
      refundId: `${payment.tradeNo}-${payment.refunds.length + 1}`,
      amount,
      reason,
      status: 'succeeded',
      createdAt: now,
      finishedAt: now,
    };
    payment.refunds.push(refund);
    const full = this.status(payment) === 'TRADE_CLOSED';
    const trade = this.trade(payment);
    if (full) trade.gmtClose = now;
    this.#notify(payment, 'refund', {
      ...this.#paidFields(payment, full ? 'TRADE_CLOSED' : 'TRADE_SUCCESS'),
      out_biz_no: outRequestNo,
      refund_fee: fenToYuan(this.refunded(payment)),
      gmt_refund: beijingTimeMillis(now),
      gmt_close: full ? beijingTime(now) : null,
    });
    return refund;
  }

  /**
   * The signed parameters of the browser's return to `return_url` after a page or wap payment
   * (research §B.6): same signing rule as notifies.
   */
  syncReturn(payment: SandboxPayment): Record<string, string> {
    const trade = this.trade(payment);
    const merchant = this.#merchant(payment);
    const params: Record<string, string> = {
      charset: 'utf-8',
      out_trade_no: payment.outTradeNo,
      method: `${trade.method}.return`,
      total_amount: fenToYuan(this.paid(payment)),
      trade_no: payment.tradeNo,
      auth_app_id: trade.appId,
      version: '1.0',
      app_id: trade.appId,
      sign_type: 'RSA2',
      seller_id: trade.sellerId,
      timestamp: beijingTime(this.#context.now()),
    };
    params.sign = rsa2Sign(signContent(params, NOTIFY_EXCLUDED), merchant.alipayPrivateKey);
    return params;
  }

  #merchant(payment: SandboxPayment): AlipayMerchant {
    const merchant = this.#merchants.get(payment.merchantId);
    if (!merchant) throw new Error(`Alipay merchant ${payment.merchantId} is not registered`);
    return merchant;
  }

  #commonTradeFields(payment: SandboxPayment): NotifyFields {
    const trade = this.trade(payment);
    const buyerKnown = this.buyerKnown(payment);
    return {
      app_id: trade.appId,
      auth_app_id: trade.appId,
      trade_no: payment.tradeNo,
      out_trade_no: payment.outTradeNo,
      buyer_id: buyerKnown ? payment.payerId : null,
      buyer_logon_id: buyerKnown ? trade.buyerLogonId : null,
      seller_id: trade.sellerId,
      subject: payment.subject,
      body: trade.body,
      passback_params: trade.passbackParams,
      gmt_create: beijingTime(payment.createdAt),
    };
  }

  #paidFields(payment: SandboxPayment, tradeStatus: TradeStatus): NotifyFields {
    const paid = fenToYuan(this.paid(payment));
    return {
      ...this.#commonTradeFields(payment),
      trade_status: tradeStatus,
      total_amount: paid,
      receipt_amount: paid,
      invoice_amount: paid,
      buyer_pay_amount: paid,
      point_amount: '0.00',
      gmt_payment: payment.paidAt ? beijingTime(payment.paidAt) : null,
      fund_bill_list: JSON.stringify([{ amount: paid, fundChannel: 'ALIPAYACCOUNT' }]),
    };
  }

  /**
   * POSTs a form-encoded notify to the trade's notify_url, retried on Alipay's schedule until the
   * answer is exactly `success`. The fields are fixed when the event happens; each try gets a fresh
   * notify_time and signature, the notify_id stays. Empty fields are never sent (research §B.6).
   */
  #notify(payment: SandboxPayment, kind: 'payment' | 'refund', fields: NotifyFields): void {
    if (!payment.notifyUrl) return;
    const merchant = this.#merchant(payment);
    const notifyId = newNotifyId(this.#context.now());
    const fixed: Record<string, string> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (value !== null && value !== undefined && value !== '') fixed[key] = value;
    }
    this.#context.callbacks.send({
      provider: 'alipay',
      kind,
      outTradeNo: payment.outTradeNo,
      url: payment.notifyUrl,
      build: () => {
        const params: Record<string, string> = {
          notify_time: beijingTime(this.#context.now()),
          notify_type: 'trade_status_sync',
          notify_id: notifyId,
          charset: 'utf-8',
          version: '1.0',
          sign_type: 'RSA2',
          ...fixed,
        };
        params.sign = rsa2Sign(signContent(params, NOTIFY_EXCLUDED), merchant.alipayPrivateKey);
        return {
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          body: new URLSearchParams(params).toString(),
        };
      },
      acknowledged: (_status, body) => body === 'success',
      schedule: ALIPAY_NOTIFY_SCHEDULE,
    });
  }
}
