import type { Clock } from '../clock.js';
import type { DisplayMode } from '../db/schema.js';
import type { ChannelCode, Provider } from './channel-codes.js';
import type { HttpTransport } from './http-transport.js';

/**
 * One interface over WeChat Pay v3 and Alipay. A client knows its provider and its merchant's
 * credentials, and nothing of orders: it turns our requests into the provider's, and the provider's
 * answers and callbacks into the normalised shapes below. Money is fen throughout.
 */

/** Extra inputs some products need, from the merchant's submit (`channelExtras`). */
export interface ChannelExtras {
  /** wx_jsapi, wx_lite: the payer's openid under the channel's appId. */
  openid?: string;
  /** alipay_bar: the code the payer shows (16–24 digits). */
  authCode?: string;
  /** wx_h5: `iOS`, `Android` or `Wap` (default `Wap`). */
  h5Type?: string;
  /** alipay_wap: where the payer goes when leaving the cashier. */
  quitUrl?: string;
}

export interface CreatePaymentInput {
  code: ChannelCode;
  /** Our attempt number, sent as out_trade_no. */
  outTradeNo: string;
  amount: number;
  subject: string;
  expireAt: Date;
  /** Where the provider posts the payment callback. */
  notifyUrl: string;
  /** Where the provider sends the browser after a page payment. */
  returnUrl: string | null;
  userIp: string | null;
  extras: ChannelExtras;
}

/** What a merchant's page or app does next: show a QR code, redirect, post a form, call an SDK. */
export interface PaymentDisplay {
  mode: DisplayMode;
  /** A URL (qr_code, url), HTML (form), JSON parameters (app, jsapi), or empty (none). */
  content: string;
}

export type TradeState = 'waiting' | 'paid' | 'closed' | 'not_found';

/** The provider's view of one payment (out_trade_no). */
export interface TradeSnapshot {
  outTradeNo: string;
  state: TradeState;
  /** The amount the provider says was paid (or ordered, while waiting), fen; null when unknown. */
  amount: number | null;
  channelTradeNo: string | null;
  payerId: string | null;
  paidAt: Date | null;
  /** The provider's own status word (SUCCESS, TRADE_SUCCESS, …), for logs and support. */
  providerState: string;
  raw: Record<string, unknown>;
}

export interface CreatedPayment {
  display: PaymentDisplay;
  /** Set when the provider answered with the outcome at once (bar-code payments). */
  trade?: TradeSnapshot;
}

export interface RefundInput {
  outTradeNo: string;
  outRefundNo: string;
  amount: number;
  /** The payment's total, which WeChat wants repeated. */
  total: number;
  reason: string | null;
  notifyUrl: string;
}

/**
 * `held`: refused for now while the provider keeps the money until the merchant acts (WeChat
 * `ABNORMAL`); it may still be paid out (`succeeded`) or closed (`failed`) later.
 */
export type RefundState = 'processing' | 'succeeded' | 'failed' | 'held' | 'not_found';

export interface RefundSnapshot {
  outRefundNo: string;
  state: RefundState;
  amount: number | null;
  channelRefundNo: string | null;
  finishedAt: Date | null;
  failureReason: string | null;
  providerState: string;
  raw: Record<string, unknown>;
}

/** An incoming HTTP callback, with the body exactly as received. */
export interface CallbackRequest {
  headers: Record<string, string | string[] | undefined>;
  rawBody: string;
  contentType: string | undefined;
}

export type VerifiedCallback =
  | { kind: 'payment'; trade: TradeSnapshot }
  | { kind: 'refund'; refund: RefundSnapshot; outTradeNo: string };

/** The provider's expected answer to a callback. */
export interface CallbackAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** What every client is built with: the way to reach its provider, and the time. */
export interface ChannelClientDeps {
  transport: HttpTransport;
  clock: Clock;
}

export interface ChannelClient {
  readonly provider: Provider;
  createPayment(input: CreatePaymentInput): Promise<CreatedPayment>;
  queryPayment(outTradeNo: string): Promise<TradeSnapshot>;
  /** Closes an unpaid payment; closing one that is already closed, or unknown to the provider, succeeds. */
  closePayment(outTradeNo: string): Promise<void>;
  refund(input: RefundInput): Promise<RefundSnapshot>;
  queryRefund(outRefundNo: string, outTradeNo: string): Promise<RefundSnapshot>;
  /**
   * Verifies a callback (signature, time window, decryption, and that it names this merchant) and
   * normalises it. Throws `CallbackRejected` with the reason when any check fails.
   */
  verifyCallback(request: CallbackRequest): VerifiedCallback;
  callbackAnswer(accepted: boolean): CallbackAnswer;
}

/** The provider said no, or could not be reached. Carries the provider's own evidence. */
export class ChannelError extends Error {
  constructor(
    readonly provider: Provider,
    /** `rejected`: the provider answered with an error; `unreachable`: no (valid) answer came back. */
    readonly kind: 'rejected' | 'unreachable' | 'invalid_response',
    /** The provider's error code (`PARAM_ERROR`, `ACQ.TRADE_HAS_SUCCESS`, …) or a transport code. */
    readonly providerCode: string,
    message: string,
    options?: {
      cause?: unknown;
      httpStatus?: number;
      /**
       * A rejection that is not a "no": the provider was busy or does not know the outcome yet
       * (WeChat SYSTEM_ERROR, Alipay 20000). Each client decides from its own protocol.
       */
      retryable?: boolean;
    },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChannelError';
    this.httpStatus = options?.httpStatus;
    this.retryable = options?.retryable ?? false;
  }
  readonly httpStatus: number | undefined;
  readonly retryable: boolean;
}

/** A callback failed a check; `reason` is safe to log (no secrets, no payload). */
export class CallbackRejected extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'CallbackRejected';
  }
}

const PROVIDER_NAMES: Record<Provider, string> = { wechatpay: 'WeChat Pay', alipay: 'Alipay' };

function isTimeout(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 4; depth++) {
    const { name, code, cause } = e as { name?: unknown; code?: unknown; cause?: unknown };
    if (name === 'TimeoutError' || name === 'AbortError') return true;
    if (typeof code === 'string' && (code.endsWith('_TIMEOUT') || code === 'ETIMEDOUT')) return true;
    e = cause;
  }
  return false;
}

/** No (valid) answer came back: `TIMEOUT` or `NETWORK_ERROR`, the transport's error kept as the cause. */
export function channelUnreachable(provider: Provider, error: unknown): ChannelError {
  const timeout = isTimeout(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new ChannelError(
    provider,
    'unreachable',
    timeout ? 'TIMEOUT' : 'NETWORK_ERROR',
    `${PROVIDER_NAMES[provider]} ${timeout ? 'did not answer in time' : 'could not be reached'}: ${detail}`,
    { cause: error },
  );
}

/**
 * True when the channel's error may go away by itself (it could not be reached, or its answer was
 * "busy" or "outcome unknown"): the request is repeated, or its outcome asked for, later rather than
 * taken as a refusal.
 */
export function isTransientChannelError(error: ChannelError): boolean {
  return error.kind !== 'rejected' || error.retryable;
}
