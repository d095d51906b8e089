import { createPrivateKey, createPublicKey } from 'node:crypto';
import { WECHATPAY_CALLBACK_SCHEDULE } from '../callbacks.js';
import type { SandboxPayment, SandboxRefund } from '../ledger.js';
import { type SandboxContext, SandboxError } from '../provider.js';
import {
  aesGcmEncrypt,
  beijingRfc3339,
  generateRsaKeyPair,
  randomChars,
  randomHexLower,
  randomHexUpper,
  responseMessage,
  rsaSign,
  SIGNATURE_TYPE,
  unixSeconds,
} from './crypto.js';
import {
  canonicalJson,
  credentialLifetimeMs,
  details,
  expireIfDue,
  type Merchant,
  newAppid,
  newEventId,
  newMchid,
  newOpenid,
  newPrepayId,
  newPublicKeyId,
  newRefundId,
  newTransactionId,
  refundResource,
  refundView,
  type TradeType,
  transactionView,
  type WechatDetails,
} from './state.js';
import { invalidRequest, type PrepayRequest, type RefundRequest, WechatPayError } from './validate.js';

/** Exactly paycenter's WeChat Pay channel config (packages/server/src/channels/wechatpay/config.ts). */
export interface WechatPayChannelConfig {
  mchId: string;
  appId: string;
  apiV3Key: string;
  merchantSerialNo: string;
  merchantPrivateKey: string;
  platformPublicKey: string;
  platformPublicKeyId: string;
  baseUrl: string;
}

export interface WechatPaySimulatorOptions {
  /**
   * How long a refund stays PROCESSING before it succeeds (or turns ABNORMAL/CLOSED) and its callback
   * goes out. Default: `1000 × context.timeScale` when the context has a time scale, else 0 (the next
   * macrotask after the refund call has been answered).
   */
  refundDelayMs?: number;
}

/** A refund whose reason contains this turns ABNORMAL instead of SUCCESS (REFUND.ABNORMAL callback). */
export const SANDBOX_ABNORMAL_MARKER = 'SANDBOX_ABNORMAL';
/** A refund whose reason contains this turns CLOSED (REFUND.CLOSED callback). */
export const SANDBOX_CLOSED_MARKER = 'SANDBOX_CLOSED';

const DEFAULT_EXPIRY_MS = 7 * 24 * 3600_000;
const MIN_EXPIRY_MS = 60_000;
const MAX_EXPIRY_MS = 90 * 24 * 3600_000;

const ORDER_PAID = () => new WechatPayError(400, 'ORDERPAID', '该订单已支付 (the order is already paid)');
const ORDER_CLOSED = () => new WechatPayError(400, 'ORDER_CLOSED', '订单已关闭 (the order is closed)');
const ORDER_NOT_EXIST = () => new WechatPayError(404, 'ORDER_NOT_EXIST', '订单不存在 (no such order)');
const RESOURCE_NOT_EXISTS = (what: string) =>
  new WechatPayError(
    404,
    'RESOURCE_NOT_EXISTS',
    `${what}不存在 (no such ${what === '订单' ? 'order' : 'refund'})`,
  );

/** The business side of the simulated WeChat Pay: merchants, orders, refunds, callbacks. No HTTP here. */
/** What it takes to recreate a merchant in a fresh sandbox (keys as PEM). */
export interface WechatPayMerchantRecord {
  mchid: string;
  appid: string;
  apiV3Key: string;
  serialNo: string;
  merchantPublicKey: string;
  platformPrivateKey: string;
  platformPublicKeyId: string;
}

export class WechatPayService {
  readonly merchants = new Map<string, Merchant>();
  readonly #context: SandboxContext;
  readonly #refundDelayMs: number;
  readonly #byPrepayId = new Map<string, SandboxPayment>();
  readonly #refunds = new Map<string, SandboxPayment>();
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(context: SandboxContext, options: WechatPaySimulatorOptions = {}) {
    this.#context = context;
    this.#refundDelayMs = options.refundDelayMs ?? 1000 * context.timeScale;
  }

  /** The merchants' keys as PEM, for a sandbox that must remember them across restarts. */
  exportMerchants(): WechatPayMerchantRecord[] {
    return [...this.merchants.values()].map((m) => ({
      mchid: m.mchid,
      appid: m.appid,
      apiV3Key: m.apiV3Key,
      serialNo: m.serialNo,
      merchantPublicKey: m.merchantPublicKey.export({ type: 'spki', format: 'pem' }).toString(),
      platformPrivateKey: m.platformPrivateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      platformPublicKeyId: m.platformPublicKeyId,
    }));
  }

  importMerchants(records: readonly unknown[]): void {
    for (const record of records) {
      const r = record as Partial<Record<keyof WechatPayMerchantRecord, unknown>> | null;
      const fields = [
        'mchid',
        'appid',
        'apiV3Key',
        'serialNo',
        'merchantPublicKey',
        'platformPrivateKey',
        'platformPublicKeyId',
      ] as const;
      if (!r || fields.some((f) => typeof r[f] !== 'string'))
        throw new Error('not a WeChat Pay sandbox merchant record');
      const m = r as WechatPayMerchantRecord;
      this.merchants.set(m.mchid, {
        mchid: m.mchid,
        appid: m.appid,
        apiV3Key: m.apiV3Key,
        serialNo: m.serialNo,
        merchantPublicKey: createPublicKey(m.merchantPublicKey),
        platformPrivateKey: createPrivateKey(m.platformPrivateKey),
        platformPublicKeyId: m.platformPublicKeyId,
      });
    }
  }

  now(): Date {
    return this.#context.now();
  }

  baseUrl(): string {
    return `${this.#context.baseUrl()}/wechatpay`;
  }

  createMerchant(): WechatPayChannelConfig {
    const baseUrl = this.baseUrl();
    let mchid = newMchid();
    while (this.merchants.has(mchid)) mchid = newMchid();
    const merchantKeys = generateRsaKeyPair();
    const platformKeys = generateRsaKeyPair();
    const merchant: Merchant = {
      mchid,
      appid: newAppid(),
      apiV3Key: randomChars(32),
      serialNo: randomHexUpper(40),
      merchantPublicKey: merchantKeys.publicKey,
      platformPrivateKey: platformKeys.privateKey,
      platformPublicKeyId: newPublicKeyId(mchid, this.now()),
    };
    this.merchants.set(mchid, merchant);
    return {
      mchId: merchant.mchid,
      appId: merchant.appid,
      apiV3Key: merchant.apiV3Key,
      merchantSerialNo: merchant.serialNo,
      merchantPrivateKey: merchantKeys.privatePem,
      platformPublicKey: platformKeys.publicPem,
      platformPublicKeyId: merchant.platformPublicKeyId,
      baseUrl,
    };
  }

  /** The `Wechatpay-*` headers signing `body` (the exact bytes sent) with the merchant's platform key. */
  signatureHeaders(merchant: Merchant, body: string): Record<string, string> {
    const timestamp = String(unixSeconds(this.now()));
    const nonce = randomHexLower(32);
    return {
      'Wechatpay-Timestamp': timestamp,
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Signature': rsaSign(responseMessage(timestamp, nonce, body), merchant.platformPrivateKey),
      'Wechatpay-Serial': merchant.platformPublicKeyId,
      'Wechatpay-Signature-Type': SIGNATURE_TYPE,
    };
  }

  // ------------------------------------------------------------------------------------------ orders

  /** A waiting order, by its out_trade_no within the merchant, after the lazy expiry check. */
  #order(merchant: Merchant, outTradeNo: string): SandboxPayment | undefined {
    const payment = this.#context.ledger.get('wechatpay', merchant.mchid, outTradeNo);
    if (payment) expireIfDue(payment, this.now());
    return payment;
  }

  /** POST /v3/pay/transactions/{native,jsapi,h5,app}: the body already parsed and checked. */
  prepay(
    merchant: Merchant,
    tradeType: TradeType,
    request: PrepayRequest,
    body: unknown,
  ): Record<string, string> {
    if (request.appid !== merchant.appid) {
      throw new WechatPayError(
        400,
        'APPID_MCHID_NOT_MATCH',
        'appid和mch_id不匹配 (appid is not bound to mchid)',
      );
    }
    const now = this.now();
    const fingerprint = canonicalJson({ tradeType, body });
    const existing = this.#order(merchant, request.outTradeNo);
    if (existing) {
      if (existing.status === 'paid') throw ORDER_PAID();
      if (existing.status === 'closed') throw ORDER_CLOSED();
      const wx = details(existing);
      if (wx.fingerprint !== fingerprint) {
        throw invalidRequest('请求重入时，参数与首次请求时不一致 (re-entered with different parameters)');
      }
      if (now.getTime() - wx.credentialIssuedAt.getTime() >= credentialLifetimeMs(tradeType)) {
        this.#issueCredential(existing, now);
      }
      return this.#credentialResponse(existing);
    }

    let expireAt = new Date(now.getTime() + DEFAULT_EXPIRY_MS);
    if (request.timeExpire) {
      // WeChat clamps time_expire to [order time + 1 minute, order time + 90 days].
      const wanted = request.timeExpire.getTime();
      expireAt = new Date(
        Math.min(Math.max(wanted, now.getTime() + MIN_EXPIRY_MS), now.getTime() + MAX_EXPIRY_MS),
      );
    }
    const wx: WechatDetails = {
      appid: request.appid,
      tradeType,
      attach: request.attach,
      fingerprint,
      prepayId: '',
      credential: '',
      credentialIssuedAt: now,
      bankType: 'OTHERS',
      refunds: {},
    };
    const payment: SandboxPayment = {
      provider: 'wechatpay',
      merchantId: merchant.mchid,
      outTradeNo: request.outTradeNo,
      tradeNo: '',
      product: tradeType,
      subject: request.description,
      amount: request.total,
      paidAmount: null,
      status: 'waiting',
      notifyUrl: request.notifyUrl,
      payerId: request.payerOpenid ?? newOpenid(),
      expireAt,
      createdAt: now,
      paidAt: null,
      closedAt: null,
      refunds: [],
      details: wx as unknown as Record<string, unknown>,
    };
    this.#issueCredential(payment, now);
    this.#context.ledger.add(payment);
    return this.#credentialResponse(payment);
  }

  #issueCredential(payment: SandboxPayment, now: Date): void {
    const wx = details(payment);
    wx.prepayId = newPrepayId(now);
    wx.credentialIssuedAt = now;
    this.#byPrepayId.set(wx.prepayId, payment);
    if (wx.tradeType === 'NATIVE') wx.credential = `weixin://wxpay/bizpayurl?pr=${randomChars(9)}`;
    else if (wx.tradeType === 'MWEB') {
      wx.credential = `${this.baseUrl()}/h5pay?prepay_id=${wx.prepayId}&package=${randomChars(10, '0123456789')}`;
    } else wx.credential = wx.prepayId;
  }

  #credentialResponse(payment: SandboxPayment): Record<string, string> {
    const wx = details(payment);
    if (wx.tradeType === 'NATIVE') return { code_url: wx.credential };
    if (wx.tradeType === 'MWEB') return { h5_url: wx.credential };
    return { prepay_id: wx.credential };
  }

  /** For the sandbox's H5 cashier page. */
  paymentByPrepayId(prepayId: string): SandboxPayment | undefined {
    const payment = this.#byPrepayId.get(prepayId);
    if (payment) expireIfDue(payment, this.now());
    return payment;
  }

  queryByOutTradeNo(merchant: Merchant, outTradeNo: string): Record<string, unknown> {
    const payment = this.#order(merchant, outTradeNo);
    if (!payment) throw ORDER_NOT_EXIST();
    return transactionView(payment);
  }

  queryByTransactionId(merchant: Merchant, transactionId: string): Record<string, unknown> {
    const payment = this.#paidByTransactionId(merchant, transactionId);
    if (!payment) throw ORDER_NOT_EXIST();
    return transactionView(payment);
  }

  #paidByTransactionId(merchant: Merchant, transactionId: string): SandboxPayment | undefined {
    if (transactionId === '') return undefined;
    return this.#context.ledger
      .all()
      .find(
        (p) => p.provider === 'wechatpay' && p.merchantId === merchant.mchid && p.tradeNo === transactionId,
      );
  }

  /** POST …/close: re-entrant; a paid order cannot be closed. */
  closeOrder(merchant: Merchant, outTradeNo: string): void {
    const payment = this.#order(merchant, outTradeNo);
    if (!payment) throw ORDER_NOT_EXIST();
    if (payment.status === 'paid') throw ORDER_PAID();
    if (payment.status === 'waiting') this.closePayment(payment);
  }

  /** The payer pays (control API or the H5 page). Only a waiting, unexpired order can be paid. */
  pay(payment: SandboxPayment, amount?: number): void {
    const now = this.now();
    expireIfDue(payment, now);
    if (payment.status !== 'waiting') {
      throw new SandboxError(409, 'not_payable', `payment ${payment.outTradeNo} is ${payment.status}`);
    }
    const merchant = this.#merchant(payment);
    payment.status = 'paid';
    payment.paidAmount = amount ?? payment.amount;
    payment.paidAt = now;
    payment.tradeNo = newTransactionId(now);
    this.#notify(merchant, {
      kind: 'payment',
      outTradeNo: payment.outTradeNo,
      url: payment.notifyUrl,
      eventType: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      originalType: 'transaction',
      resource: transactionView(payment, 'SUCCESS'),
    });
  }

  /** NOTPAY → CLOSED. WeChat sends no callback for a close. */
  closePayment(payment: SandboxPayment): void {
    if (payment.status !== 'waiting') return;
    payment.status = 'closed';
    payment.closedAt = this.now();
  }

  #merchant(payment: SandboxPayment): Merchant {
    const merchant = this.merchants.get(payment.merchantId);
    if (!merchant) throw new Error(`no WeChat Pay merchant ${payment.merchantId} in the sandbox`);
    return merchant;
  }

  // ----------------------------------------------------------------------------------------- refunds

  /** POST /v3/refund/domestic/refunds: accepted as PROCESSING, finished a little later with a callback. */
  refund(merchant: Merchant, request: RefundRequest): Record<string, unknown> {
    let payment: SandboxPayment | undefined;
    if (request.transactionId !== null) {
      payment = this.#paidByTransactionId(merchant, request.transactionId);
      if (payment && request.outTradeNo !== null && payment.outTradeNo !== request.outTradeNo) {
        throw invalidRequest('transaction_id and out_trade_no name different orders');
      }
    } else if (request.outTradeNo !== null) {
      payment = this.#order(merchant, request.outTradeNo);
    }
    // An unpaid order has no transaction to refund: WeChat answers as for an unknown one.
    if (payment?.status !== 'paid') throw RESOURCE_NOT_EXISTS('订单');

    const key = `${merchant.mchid}:${request.outRefundNo}`;
    const fingerprint = canonicalJson({
      outTradeNo: payment.outTradeNo,
      refund: request.refund,
      total: request.total,
    });
    const previous = this.#refunds.get(key);
    if (previous) {
      const refund = previous.refunds.find((r) => r.outRefundNo === request.outRefundNo)!;
      if (details(previous).refunds[request.outRefundNo]?.fingerprint !== fingerprint) {
        throw invalidRequest(
          '同一退款单号的参数与首次请求不一致 (out_refund_no reused with different parameters)',
        );
      }
      return refundView(previous, refund);
    }

    const total = payment.paidAmount ?? payment.amount;
    if (request.total !== total) {
      throw invalidRequest(
        `订单金额不一致 (amount.total ${request.total} differs from the order's ${total})`,
      );
    }
    const committed = payment.refunds
      .filter((r) => r.status !== 'closed')
      .reduce((sum, r) => sum + r.amount, 0);
    const remaining = total - committed;
    if (remaining <= 0) throw invalidRequest('订单已全额退款 (the order is fully refunded)');
    if (request.refund > remaining) {
      throw invalidRequest(
        `申请退款金额超过订单可退金额 (refund ${request.refund} exceeds the refundable ${remaining})`,
      );
    }

    const now = this.now();
    const refund: SandboxRefund = {
      outRefundNo: request.outRefundNo,
      refundId: newRefundId(now),
      amount: request.refund,
      reason: request.reason,
      status: 'processing',
      createdAt: now,
      finishedAt: null,
    };
    payment.refunds.push(refund);
    details(payment).refunds[refund.outRefundNo] = { notifyUrl: request.notifyUrl, fingerprint };
    this.#refunds.set(key, payment);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#finishRefund(payment, refund);
    }, this.#refundDelayMs);
    timer.unref();
    this.#timers.add(timer);
    return refundView(payment, refund);
  }

  /**
   * The merchant reroutes an ABNORMAL refund in the merchant console (to the payer's balance or an
   * account of the merchant's choosing): WeChat finishes it and calls back with REFUND.SUCCESS.
   */
  rerouteAbnormalRefund(payment: SandboxPayment, outRefundNo: string): void {
    const refund = payment.refunds.find((r) => r.outRefundNo === outRefundNo);
    if (!refund)
      throw new SandboxError(404, 'not_found', `no refund ${outRefundNo} of ${payment.outTradeNo}`);
    if (refund.status !== 'abnormal') {
      throw new SandboxError(409, 'not_abnormal', `refund ${outRefundNo} is ${refund.status}, not abnormal`);
    }
    refund.status = 'processing';
    this.#finishRefund(payment, refund, 'succeeded');
  }

  #finishRefund(payment: SandboxPayment, refund: SandboxRefund, outcome?: 'succeeded'): void {
    if (refund.status !== 'processing') return;
    const reason = refund.reason ?? '';
    refund.status =
      outcome ??
      (reason.includes(SANDBOX_ABNORMAL_MARKER)
        ? 'abnormal'
        : reason.includes(SANDBOX_CLOSED_MARKER)
          ? 'closed'
          : 'succeeded');
    refund.finishedAt = this.now();
    const [eventType, summary] =
      refund.status === 'succeeded'
        ? ['REFUND.SUCCESS', '退款成功']
        : refund.status === 'abnormal'
          ? ['REFUND.ABNORMAL', '退款异常']
          : ['REFUND.CLOSED', '退款关闭'];
    this.#notify(this.#merchant(payment), {
      kind: 'refund',
      outTradeNo: payment.outTradeNo,
      url: details(payment).refunds[refund.outRefundNo]?.notifyUrl ?? payment.notifyUrl,
      eventType,
      summary,
      originalType: 'refund',
      resource: refundResource(payment, refund),
    });
  }

  queryRefund(merchant: Merchant, outRefundNo: string): Record<string, unknown> {
    const payment = this.#refunds.get(`${merchant.mchid}:${outRefundNo}`);
    const refund = payment?.refunds.find((r) => r.outRefundNo === outRefundNo);
    if (!payment || !refund) throw RESOURCE_NOT_EXISTS('退款单');
    return refundView(payment, refund);
  }

  // --------------------------------------------------------------------------------------- callbacks

  /**
   * Sends one notification: the envelope (event id, create_time, encrypted resource) is fixed when the
   * event happens, as WeChat resends the same notification; every try is signed afresh, so its
   * Wechatpay-Timestamp is the time of that try.
   */
  #notify(
    merchant: Merchant,
    event: {
      kind: 'payment' | 'refund';
      outTradeNo: string;
      url: string | null;
      eventType: string;
      summary: string;
      originalType: 'transaction' | 'refund';
      resource: Record<string, unknown>;
    },
  ): void {
    if (!event.url) return;
    const now = this.now();
    const nonce = randomChars(12);
    const body = JSON.stringify({
      id: newEventId(now),
      create_time: beijingRfc3339(now),
      resource_type: 'encrypt-resource',
      event_type: event.eventType,
      summary: event.summary,
      resource: {
        original_type: event.originalType,
        algorithm: 'AEAD_AES_256_GCM',
        ciphertext: aesGcmEncrypt(
          merchant.apiV3Key,
          nonce,
          event.originalType,
          JSON.stringify(event.resource),
        ),
        associated_data: event.originalType,
        nonce,
      },
    });
    this.#context.callbacks.send({
      provider: 'wechatpay',
      kind: event.kind,
      outTradeNo: event.outTradeNo,
      url: event.url,
      build: () => ({
        headers: { 'Content-Type': 'application/json', ...this.signatureHeaders(merchant, body) },
        body,
      }),
      // WeChat judges by the HTTP status alone: 200 or 204 within 5 s (§A.4).
      acknowledged: (status) => status === 200 || status === 204,
      schedule: WECHATPAY_CALLBACK_SCHEDULE,
    });
  }

  /** Stops refunds that have not finished yet (the server is closing). */
  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
