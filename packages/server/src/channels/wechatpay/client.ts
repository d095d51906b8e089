import type { Clock } from '../../clock.js';
import { USER_AGENT } from '../../version.js';
import {
  type CallbackAnswer,
  CallbackRejected,
  type CallbackRequest,
  type ChannelClient,
  type ChannelClientDeps,
  ChannelError,
  type CreatedPayment,
  type CreatePaymentInput,
  channelUnreachable,
  type RefundInput,
  type RefundSnapshot,
  type RefundState,
  type TradeSnapshot,
  type TradeState,
  type VerifiedCallback,
} from '../channel-client.js';
import {
  isObject,
  type Json,
  Malformed,
  malformedResponse,
  notFoundRefund,
  notFoundTrade,
  optionalTime,
  readAnswer,
  readCallback,
  str,
} from '../client-support.js';
import type { HttpResponse, HttpTransport } from '../http-transport.js';
import { openWechatPayCallback } from './callback.js';
import type { WechatPayConfig } from './config.js';
import { WechatPayFormatError, WechatPaySignatureError } from './errors.js';
import { wechatPayAppParams, wechatPayJsapiParams } from './invoke.js';
import { loadWechatPayKeys, type WechatPayKeys } from './keys.js';
import { canonicalUrl, signWechatPayRequest, verifyWechatPaySignature } from './signature.js';
import { formatWechatPayTime, parseWechatPayTime } from './time.js';

/**
 * WeChat Pay API v3 for one direct merchant (research §A). Every request is signed over the method,
 * the path and query exactly as sent (a base URL's own path included) and the exact body; every 2xx
 * answer, and every error answer that carries signature headers, is verified with the WeChat Pay
 * public key before anything in it is believed.
 */

/** WeChat's limits, in characters: `description` string(127), refund `reason` string(80). */
const DESCRIPTION_MAX = 127;
const REASON_MAX = 80;
/** Error codes that mean "busy, try again with the same parameters" rather than "no" (research §A). */
const RETRYABLE_CODES: ReadonlySet<string> = new Set(['SYSTEM_ERROR', 'FREQUENCY_LIMITED', 'BANK_ERROR']);

const TRADE_STATES: Readonly<Record<string, TradeState>> = {
  SUCCESS: 'paid',
  // The payment succeeded and (part of) it was refunded since: for the order it was paid.
  REFUND: 'paid',
  NOTPAY: 'waiting',
  USERPAYING: 'waiting',
  CLOSED: 'closed',
  REVOKED: 'closed',
  PAYERROR: 'closed',
};

const REFUND_STATES: Readonly<Record<string, RefundState>> = {
  PROCESSING: 'processing',
  SUCCESS: 'succeeded',
  ABNORMAL: 'held',
  CLOSED: 'failed',
};

const REFUND_FAILURES: Readonly<Record<string, string>> = {
  ABNORMAL:
    "the refund is abnormal: the payer's account or card cannot receive it (reroute it in the merchant console)",
  CLOSED: 'the refund was closed by WeChat Pay',
};

/**
 * Text WeChat accepts: characters outside the Basic Multilingual Plane (emoji) are 4 bytes in UTF-8,
 * which WeChat Pay refuses (research §A.1), so they are dropped; then the text is cut to `max`
 * characters (code points, never half a surrogate pair).
 */
export function wechatPayText(text: string, max: number): string {
  const kept: string[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (code > 0xffff || (code >= 0xd800 && code <= 0xdfff)) continue;
    kept.push(ch);
    if (kept.length === max) break;
  }
  return kept.join('').trim();
}

function hasSignatureHeaders(headers: Readonly<Record<string, string>>): boolean {
  return Object.keys(headers).some((name) => name.toLowerCase().startsWith('wechatpay-signature'));
}

function parseTime(value: unknown, field: string): Date | null {
  return optionalTime(value, field, parseWechatPayTime, WechatPayFormatError);
}

/** An amount in fen (`amount.total`, `amount.refund`): absent → null; anything but a whole, non-negative number is malformed. */
function fen(amount: unknown, field: 'total' | 'refund'): number | null {
  if (amount === undefined || amount === null) return null;
  if (!isObject(amount)) throw new Malformed('invalid_amount', 'amount is not an object');
  const value = amount[field];
  if (value === undefined || value === null) return null;
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new Malformed(
    'invalid_amount',
    `amount.${field} is not a whole number of fen: ${JSON.stringify(value).slice(0, 32)}`,
  );
}

/** A transaction object (query answer or decrypted payment callback) → our snapshot. */
function tradeSnapshot(t: Json, outTradeNo: string): TradeSnapshot {
  const providerState = str(t.trade_state);
  if (providerState === null) throw new Malformed('malformed_resource', 'the transaction has no trade_state');
  const state = TRADE_STATES[providerState];
  if (state === undefined) {
    throw new Malformed('unknown_state', `unknown trade_state ${JSON.stringify(providerState.slice(0, 32))}`);
  }
  const amount = fen(t.amount, 'total');
  return {
    outTradeNo: str(t.out_trade_no) ?? outTradeNo,
    state,
    amount,
    channelTradeNo: str(t.transaction_id),
    payerId: isObject(t.payer) ? str(t.payer.openid) : null,
    paidAt: state === 'paid' ? parseTime(t.success_time, 'success_time') : null,
    providerState,
    raw: t,
  };
}

/**
 * A refund object (refund answer, refund query, or decrypted refund callback) → our snapshot. The
 * status is `status` in answers, `refund_status` in callbacks.
 */
function refundSnapshot(r: Json, outRefundNo: string): RefundSnapshot {
  const providerState = str(r.status) ?? str(r.refund_status);
  if (providerState === null) throw new Malformed('malformed_resource', 'the refund has no status');
  const state = REFUND_STATES[providerState];
  if (state === undefined) {
    throw new Malformed(
      'unknown_state',
      `unknown refund status ${JSON.stringify(providerState.slice(0, 32))}`,
    );
  }
  return {
    outRefundNo: str(r.out_refund_no) ?? outRefundNo,
    state,
    amount: fen(r.amount, 'refund'),
    channelRefundNo: str(r.refund_id),
    finishedAt: state === 'succeeded' ? parseTime(r.success_time, 'success_time') : null,
    failureReason:
      state === 'failed' || state === 'held' ? (REFUND_FAILURES[providerState] ?? providerState) : null,
    providerState,
    raw: r,
  };
}

interface Answer {
  ok: boolean;
  status: number;
  /** The parsed JSON body; `{}` for an empty (204) body or an error body that is not JSON. */
  body: Json;
  /** The error `code` of a non-2xx answer. */
  code: string | undefined;
}

export class WechatPayClient implements ChannelClient {
  readonly provider = 'wechatpay' as const;
  readonly #config: WechatPayConfig;
  readonly #keys: WechatPayKeys;
  readonly #transport: HttpTransport;
  readonly #clock: Clock;

  constructor(config: WechatPayConfig, deps: ChannelClientDeps) {
    this.#config = config;
    this.#keys = loadWechatPayKeys(config);
    this.#transport = deps.transport;
    this.#clock = deps.clock;
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatedPayment> {
    const { mchId, appId } = this.#config;
    const common: Json = {
      appid: appId,
      mchid: mchId,
      description: wechatPayText(input.subject, DESCRIPTION_MAX) || input.outTradeNo,
      out_trade_no: input.outTradeNo,
      time_expire: formatWechatPayTime(input.expireAt),
      notify_url: input.notifyUrl,
      amount: { total: input.amount, currency: 'CNY' },
    };
    switch (input.code) {
      case 'wx_native': {
        const body = await this.#prepay('native', common);
        return { display: { mode: 'qr_code', content: this.#field(body, 'code_url') } };
      }
      case 'wx_jsapi':
      case 'wx_lite': {
        const openid = input.extras.openid;
        if (!openid) {
          throw new Error(
            `${input.code} needs channelExtras.openid (the payer's openid under AppID ${appId})`,
          );
        }
        const body = await this.#prepay('jsapi', { ...common, payer: { openid } });
        const params = wechatPayJsapiParams({
          appId,
          prepayId: this.#field(body, 'prepay_id'),
          privateKey: this.#keys.merchantPrivateKey,
          now: this.#clock.now(),
        });
        return { display: { mode: 'jsapi', content: JSON.stringify(params) } };
      }
      case 'wx_h5': {
        if (!input.userIp) throw new Error("wx_h5 needs the payer's IP address (the order's userIp)");
        const body = await this.#prepay('h5', {
          ...common,
          scene_info: { payer_client_ip: input.userIp, h5_info: { type: input.extras.h5Type ?? 'Wap' } },
        });
        return { display: { mode: 'url', content: this.#field(body, 'h5_url') } };
      }
      case 'wx_app': {
        const body = await this.#prepay('app', common);
        const params = wechatPayAppParams({
          appId,
          mchId,
          prepayId: this.#field(body, 'prepay_id'),
          privateKey: this.#keys.merchantPrivateKey,
          now: this.#clock.now(),
        });
        return { display: { mode: 'app', content: JSON.stringify(params) } };
      }
      default:
        throw new Error(`${input.code} is not a WeChat Pay channel`);
    }
  }

  async queryPayment(outTradeNo: string): Promise<TradeSnapshot> {
    const answer = await this.#send(
      'GET',
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}?mchid=${encodeURIComponent(this.#config.mchId)}`,
    );
    if (!answer.ok) {
      if (answer.code === 'ORDER_NOT_EXIST') return notFoundTrade(outTradeNo, answer.code, answer.body);
      throw this.#rejected(answer);
    }
    return readAnswer('wechatpay', () => tradeSnapshot(answer.body, outTradeNo));
  }

  async closePayment(outTradeNo: string): Promise<void> {
    const answer = await this.#send(
      'POST',
      `/v3/pay/transactions/out-trade-no/${encodeURIComponent(outTradeNo)}/close`,
      { mchid: this.#config.mchId },
    );
    // Unknown to WeChat, or closed already: either way it cannot be paid any more.
    if (answer.ok || answer.code === 'ORDER_NOT_EXIST' || answer.code === 'ORDER_CLOSED') return;
    // ORDERPAID / ORDER_PAID and everything else: the caller decides (a paid order is queried, not closed).
    throw this.#rejected(answer);
  }

  async refund(input: RefundInput): Promise<RefundSnapshot> {
    const reason = input.reason === null ? '' : wechatPayText(input.reason, REASON_MAX);
    const answer = await this.#send('POST', '/v3/refund/domestic/refunds', {
      out_trade_no: input.outTradeNo,
      out_refund_no: input.outRefundNo,
      ...(reason === '' ? {} : { reason }),
      notify_url: input.notifyUrl,
      amount: { refund: input.amount, total: input.total, currency: 'CNY' },
    });
    if (!answer.ok) throw this.#rejected(answer);
    return readAnswer('wechatpay', () => refundSnapshot(answer.body, input.outRefundNo));
  }

  async queryRefund(outRefundNo: string, _outTradeNo: string): Promise<RefundSnapshot> {
    const answer = await this.#send('GET', `/v3/refund/domestic/refunds/${encodeURIComponent(outRefundNo)}`);
    if (!answer.ok) {
      if (answer.code === 'RESOURCE_NOT_EXISTS' || answer.code === 'ORDER_NOT_EXIST') {
        return notFoundRefund(outRefundNo, answer.code, answer.body);
      }
      throw this.#rejected(answer);
    }
    return readAnswer('wechatpay', () => refundSnapshot(answer.body, outRefundNo));
  }

  verifyCallback(request: CallbackRequest): VerifiedCallback {
    let opened: ReturnType<typeof openWechatPayCallback>;
    try {
      opened = openWechatPayCallback({
        headers: request.headers,
        body: request.rawBody,
        platformKeys: this.#keys.platformKeys,
        apiV3Key: this.#keys.apiV3Key,
        now: this.#clock.now(),
      });
    } catch (error) {
      if (error instanceof WechatPaySignatureError || error instanceof WechatPayFormatError) {
        throw new CallbackRejected(error.reason, error.message);
      }
      throw error;
    }
    const { envelope, resource } = opened;
    const eventType = envelope.event_type;
    const originalType = envelope.resource.original_type;
    const mchid = str(resource.mchid);
    if (mchid !== this.#config.mchId) {
      throw new CallbackRejected('merchant_mismatch', `the callback is for mchid ${mchid ?? '(none)'}`);
    }
    return readCallback((): VerifiedCallback => {
      if (eventType === 'TRANSACTION.SUCCESS' && (originalType ?? 'transaction') === 'transaction') {
        const appid = str(resource.appid);
        if (appid !== this.#config.appId) {
          throw new CallbackRejected('merchant_mismatch', `the callback is for appid ${appid ?? '(none)'}`);
        }
        const outTradeNo = str(resource.out_trade_no);
        if (outTradeNo === null)
          throw new Malformed('malformed_resource', 'the transaction has no out_trade_no');
        return { kind: 'payment', trade: tradeSnapshot(resource, outTradeNo) };
      }
      if (eventType.startsWith('REFUND.') && (originalType ?? 'refund') === 'refund') {
        const outRefundNo = str(resource.out_refund_no);
        const outTradeNo = str(resource.out_trade_no);
        if (outRefundNo === null || outTradeNo === null) {
          throw new Malformed('malformed_resource', 'the refund has no out_refund_no or out_trade_no');
        }
        return { kind: 'refund', refund: refundSnapshot(resource, outRefundNo), outTradeNo };
      }
      throw new CallbackRejected(
        'unsupported_event',
        `event_type ${JSON.stringify(eventType.slice(0, 32))} (${String(originalType).slice(0, 32)}) is not handled`,
      );
    });
  }

  callbackAnswer(accepted: boolean): CallbackAnswer {
    return accepted
      ? { status: 200, contentType: 'application/json', body: '{"code":"SUCCESS","message":"成功"}' }
      : { status: 400, contentType: 'application/json', body: '{"code":"FAIL","message":"失败"}' };
  }

  // ------------------------------------------------------------------------------------------ wire

  async #prepay(product: 'native' | 'jsapi' | 'h5' | 'app', body: Json): Promise<Json> {
    const answer = await this.#send('POST', `/v3/pay/transactions/${product}`, body);
    if (!answer.ok) throw this.#rejected(answer);
    return answer.body;
  }

  /** A string field a successful answer must hold. */
  #field(body: Json, name: string): string {
    const value = str(body[name]);
    if (value === null) throw malformedResponse('wechatpay', `the answer has no ${name}`);
    return value;
  }

  /**
   * A non-2xx answer: WeChat's `{code, message}` is a rejection; a body without a code (a proxy's
   * 502, an HTML error page) is no answer from WeChat at all.
   */
  #rejected(answer: Answer): ChannelError {
    if (answer.code === undefined) {
      return new ChannelError(
        'wechatpay',
        'unreachable',
        `HTTP_${answer.status}`,
        `WeChat Pay answered HTTP ${answer.status} without an error code`,
        { httpStatus: answer.status },
      );
    }
    const message = str(answer.body.message) ?? `WeChat Pay answered ${answer.code}`;
    return new ChannelError('wechatpay', 'rejected', answer.code, message, {
      httpStatus: answer.status,
      // WeChat's own advice for these: retry with the same parameters.
      retryable: answer.status >= 500 || RETRYABLE_CODES.has(answer.code),
    });
  }

  async #send(method: 'GET' | 'POST', path: string, body?: Json): Promise<Answer> {
    const url = `${this.#config.baseUrl}${path}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const signed = signWechatPayRequest({
      mchId: this.#keys.mchId,
      serialNo: this.#keys.merchantSerialNo,
      privateKey: this.#keys.merchantPrivateKey,
      method,
      url: canonicalUrl(url),
      body: text ?? '',
      now: this.#clock.now(),
    });
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': USER_AGENT,
      Authorization: signed.authorization,
      'Wechatpay-Serial': this.#config.platformPublicKeyId,
    };
    if (text !== undefined) headers['Content-Type'] = 'application/json';

    let response: HttpResponse;
    try {
      response = await this.#transport({
        method,
        url,
        headers,
        ...(text === undefined ? {} : { body: text }),
      });
    } catch (error) {
      throw channelUnreachable('wechatpay', error);
    }
    const ok = response.status >= 200 && response.status < 300;
    if (ok || hasSignatureHeaders(response.headers)) this.#verify(response);

    let parsed: unknown;
    if (response.body === '') parsed = {};
    else {
      try {
        parsed = JSON.parse(response.body);
      } catch {
        parsed = undefined;
      }
    }
    if (!isObject(parsed)) {
      if (ok) {
        throw malformedResponse('wechatpay', 'the answer is not a JSON object', {
          httpStatus: response.status,
        });
      }
      return { ok, status: response.status, body: {}, code: undefined };
    }
    return {
      ok,
      status: response.status,
      body: parsed,
      code: ok ? undefined : (str(parsed.code) ?? undefined),
    };
  }

  #verify(response: HttpResponse): void {
    try {
      verifyWechatPaySignature({
        headers: response.headers,
        body: response.body,
        platformKeys: this.#keys.platformKeys,
        now: this.#clock.now(),
      });
    } catch (error) {
      if (error instanceof WechatPaySignatureError) {
        throw new ChannelError(
          'wechatpay',
          'invalid_response',
          'INVALID_SIGNATURE',
          `the answer's signature is refused (${error.reason}): ${error.message}`,
          { cause: error, httpStatus: response.status },
        );
      }
      throw error;
    }
  }
}
