/**
 * What the simulated providers know happened: every payment and refund, with the money that moved.
 * Tests compare paycenter's books with this ledger to the fen.
 */
export type Provider = 'wechatpay' | 'alipay';

export type PaymentStatus = 'waiting' | 'paid' | 'closed';
export type RefundStatus = 'processing' | 'succeeded' | 'abnormal' | 'closed';

export interface SandboxRefund {
  outRefundNo: string;
  refundId: string;
  amount: number;
  reason: string | null;
  status: RefundStatus;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface SandboxPayment {
  provider: Provider;
  /** The merchant: WeChat `mchid` or Alipay `app_id`. */
  merchantId: string;
  outTradeNo: string;
  /** WeChat `transaction_id` / Alipay `trade_no`. */
  tradeNo: string;
  /** The product the merchant ordered through: NATIVE, JSAPI, H5, APP / page, wap, precreate, app, bar. */
  product: string;
  subject: string;
  amount: number;
  /** What the payer actually paid; differs from `amount` only when a test simulates a mismatch. */
  paidAmount: number | null;
  status: PaymentStatus;
  notifyUrl: string | null;
  payerId: string;
  expireAt: Date | null;
  createdAt: Date;
  paidAt: Date | null;
  closedAt: Date | null;
  refunds: SandboxRefund[];
  /** Provider-specific fields kept for re-entrant requests and queries. */
  details: Record<string, unknown>;
}

export class Ledger {
  readonly #byKey = new Map<string, SandboxPayment>();
  readonly #byOutTradeNo = new Map<string, SandboxPayment>();

  static key(provider: Provider, merchantId: string, outTradeNo: string): string {
    return `${provider}:${merchantId}:${outTradeNo}`;
  }

  get(provider: Provider, merchantId: string, outTradeNo: string): SandboxPayment | undefined {
    return this.#byKey.get(Ledger.key(provider, merchantId, outTradeNo));
  }

  /** Looks a payment up by its out_trade_no alone, as the control API and the wallet do. */
  find(outTradeNo: string): SandboxPayment | undefined {
    return this.#byOutTradeNo.get(outTradeNo);
  }

  add(payment: SandboxPayment): SandboxPayment {
    this.#byKey.set(Ledger.key(payment.provider, payment.merchantId, payment.outTradeNo), payment);
    this.#byOutTradeNo.set(payment.outTradeNo, payment);
    return payment;
  }

  all(): SandboxPayment[] {
    return [...this.#byKey.values()];
  }

  /** Money in minus money out, per provider, in fen. */
  totals(): Record<Provider, { paid: number; refunded: number }> {
    const totals = { wechatpay: { paid: 0, refunded: 0 }, alipay: { paid: 0, refunded: 0 } };
    for (const payment of this.#byKey.values()) {
      if (payment.paidAmount !== null) totals[payment.provider].paid += payment.paidAmount;
      for (const refund of payment.refunds) {
        if (refund.status === 'succeeded') totals[payment.provider].refunded += refund.amount;
      }
    }
    return totals;
  }
}

/** The public view of a payment for the control API. */
export function paymentView(payment: SandboxPayment): Record<string, unknown> {
  return {
    provider: payment.provider,
    merchantId: payment.merchantId,
    outTradeNo: payment.outTradeNo,
    tradeNo: payment.tradeNo,
    product: payment.product,
    subject: payment.subject,
    status: payment.status,
    amount: payment.amount,
    paidAmount: payment.paidAmount,
    payerId: payment.payerId,
    notifyUrl: payment.notifyUrl,
    expireAt: payment.expireAt?.toISOString() ?? null,
    createdAt: payment.createdAt.toISOString(),
    paidAt: payment.paidAt?.toISOString() ?? null,
    closedAt: payment.closedAt?.toISOString() ?? null,
    refunds: payment.refunds.map((r) => ({
      outRefundNo: r.outRefundNo,
      refundId: r.refundId,
      amount: r.amount,
      reason: r.reason,
      status: r.status,
      createdAt: r.createdAt.toISOString(),
      finishedAt: r.finishedAt?.toISOString() ?? null,
    })),
  };
}
