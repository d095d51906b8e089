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
  type TradeSnapshot,
  type TradeState,
  type VerifiedCallback,
} from '../channel-client.js';
import {
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
import { fenToYuan, yuanToFen } from './amount.js';
import type { AlipayConfig } from './config.js';
import { AlipayFormatError, AlipaySignatureError } from './errors.js';
import { type AlipayKeys, loadAlipayKeys } from './keys.js';
import { ALIPAY_ERROR_RESPONSE_KEY, extractAlipayResponseNode, verifyAlipayResponse } from './response.js';
import {
  type AlipayForm,
  alipayAppOrderString,
  encodeAlipayParams,
  signAlipayRequest,
  verifyAlipayNotify,
} from './signature.js';
import { formatAlipayTime, parseAlipayTime } from './time.js';

/**
 * Alipay OpenAPI (`gateway.do`, RSA2) for one application (research §B). Server calls are signed
 * form posts whose answers are verified over the raw node text; page, wap and app payments are
 * signed parameter sets handed to the payer's browser or app. Times go out in Beijing time.
 */

const SUBJECT_MAX = 256;
const REFUND_REASON_MAX = 256;
const SUCCESS = '10000';
/** trade.pay: the payer still has to confirm (password, top-up). */
const WAITING_FOR_PAYER = '10003';
/** Service unavailable: the outcome is unknown, ask again (research §B.4). */
const UNKNOWN_OUTCOME = '20000';
const BUSINESS_FAILED = '40004';
const TRADE_NOT_EXIST = 'ACQ.TRADE_NOT_EXIST';

const TRADE_STATES: Readonly<Record<string, TradeState>> = {
  WAIT_BUYER_PAY: 'waiting',
  TRADE_SUCCESS: 'paid',
  TRADE_FINISHED: 'paid',
  TRADE_CLOSED: 'closed',
};

/** Cut to `max` characters (code points, never half a surrogate pair). */
function cut(text: string, max: number): string {
  return Array.from(text).slice(0, max).join('');
}

function amountOf(value: unknown, field: string): number | null {
  if (value === undefined || value === null || value === '') return null;
  try {
    return yuanToFen(value as string);
  } catch (error) {
    if (error instanceof AlipayFormatError) throw new Malformed(error.reason, `${field}: ${error.message}`);
    throw error;
  }
}

function timeOf(value: unknown, field: string): Date | null {
  return optionalTime(value, field, parseAlipayTime, AlipayFormatError);
}

function tradeState(status: string | null): TradeState {
  const state = status === null ? undefined : TRADE_STATES[status];
  if (state === undefined) {
    throw new Malformed(
      'unknown_state',
      `unknown trade_status ${JSON.stringify((status ?? '(none)').slice(0, 32))}`,
    );
  }
  return state;
}

/**
 * A trade node (trade.query or trade.pay answer, or a notify) → our snapshot. The payer is
 * `buyer_user_id` in answers, `buyer_id` in notifies, `buyer_open_id` for newer apps; the payment
 * time is `paidAtField` (`send_pay_date` in a query answer, `gmt_payment` elsewhere).
 */
function tradeOf(
  node: Json,
  outTradeNo: string,
  state: TradeState,
  providerState: string,
  paidAtField: 'send_pay_date' | 'gmt_payment',
): TradeSnapshot {
  return {
    outTradeNo: str(node.out_trade_no) ?? outTradeNo,
    state,
    amount: amountOf(node.total_amount, 'total_amount'),
    channelTradeNo: str(node.trade_no),
    payerId: str(node.buyer_user_id) ?? str(node.buyer_id) ?? str(node.buyer_open_id),
    paidAt: state === 'paid' ? timeOf(node[paidAtField], paidAtField) : null,
    providerState,
    raw: node,
  };
}

/** A gateway answer that is not a success: `sub_code`/`sub_msg` when given, else `code`/`msg`. */
function rejected(node: Json): ChannelError {
  const code = str(node.code) ?? 'UNKNOWN';
  const subCode = str(node.sub_code);
  return new ChannelError(
    'alipay',
    'rejected',
    subCode ?? code,
    str(node.sub_msg) ?? str(node.msg) ?? `Alipay answered ${code}`,
    // 20000: the outcome is unknown, ask again; ACQ.SYSTEM_ERROR: retry or ask (research §B.4).
    {
      retryable:
        code === UNKNOWN_OUTCOME || subCode === 'ACQ.SYSTEM_ERROR' || subCode === 'aop.ACQ.SYSTEM_ERROR',
    },
  );
}

/** A form body decoded once; a field given twice stays an array (the verifier refuses it). */
function parseForm(body: string): Record<string, string | string[]> {
  const form: Record<string, string | string[]> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const seen = form[key];
    if (seen === undefined) form[key] = value;
    else form[key] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return form;
}

const isTradeNotExist = (node: Json) => node.code === BUSINESS_FAILED && node.sub_code === TRADE_NOT_EXIST;

export class AlipayClient implements ChannelClient {
  readonly provider = 'alipay' as const;
  readonly #config: AlipayConfig;
  readonly #keys: AlipayKeys;
  readonly #transport: HttpTransport;
  readonly #clock: Clock;

  constructor(config: AlipayConfig, deps: ChannelClientDeps) {
    this.#config = config;
    this.#keys = loadAlipayKeys(config);
    this.#transport = deps.transport;
    this.#clock = deps.clock;
  }

  async createPayment(input: CreatePaymentInput): Promise<CreatedPayment> {
    const common: Json = {
      out_trade_no: input.outTradeNo,
      total_amount: fenToYuan(input.amount),
      subject: cut(input.subject, SUBJECT_MAX),
      time_expire: formatAlipayTime(input.expireAt),
    };
    switch (input.code) {
      case 'alipay_qr': {
        const node = await this.#call('alipay.trade.precreate', common, input.notifyUrl);
        if (node.code !== SUCCESS) throw rejected(node);
        const qrCode = str(node.qr_code);
        if (qrCode === null)
          throw malformedResponse('alipay', 'alipay.trade.precreate answered without qr_code');
        return { display: { mode: 'qr_code', content: qrCode } };
      }
      case 'alipay_pc':
      case 'alipay_wap': {
        const pc = input.code === 'alipay_pc';
        const quitUrl = pc ? undefined : input.extras.quitUrl;
        const params = signAlipayRequest(
          {
            appId: this.#config.appId,
            method: pc ? 'alipay.trade.page.pay' : 'alipay.trade.wap.pay',
            bizContent: {
              ...common,
              product_code: pc ? 'FAST_INSTANT_TRADE_PAY' : 'QUICK_WAP_WAY',
              ...(quitUrl ? { quit_url: quitUrl } : {}),
            },
            now: this.#clock.now(),
            notifyUrl: input.notifyUrl,
            ...(input.returnUrl ? { returnUrl: input.returnUrl } : {}),
          },
          this.#keys.appPrivateKey,
        );
        return { display: { mode: 'url', content: pageUrl(this.#config.gateway, params) } };
      }
      case 'alipay_app': {
        const params = signAlipayRequest(
          {
            appId: this.#config.appId,
            method: 'alipay.trade.app.pay',
            bizContent: { ...common, product_code: 'QUICK_MSECURITY_PAY' },
            now: this.#clock.now(),
            notifyUrl: input.notifyUrl,
          },
          this.#keys.appPrivateKey,
        );
        return { display: { mode: 'app', content: alipayAppOrderString(params) } };
      }
      case 'alipay_bar': {
        const authCode = input.extras.authCode;
        if (!authCode) throw new Error('alipay_bar needs channelExtras.authCode (the code the payer shows)');
        const node = await this.#call(
          'alipay.trade.pay',
          { ...common, scene: 'bar_code', auth_code: authCode, product_code: 'FACE_TO_FACE_PAYMENT' },
          input.notifyUrl,
        );
        const trade = (state: TradeState, providerState: string) => ({
          display: { mode: 'none', content: '' } as const,
          trade: readAnswer('alipay', () =>
            tradeOf(node, input.outTradeNo, state, providerState, 'gmt_payment'),
          ),
        });
        if (node.code === SUCCESS) return trade('paid', 'TRADE_SUCCESS');
        // Waiting for the payer (10003) or an unknown outcome (20000): either way the caller asks
        // alipay.trade.query until the trade is paid or closed.
        if (node.code === WAITING_FOR_PAYER) return trade('waiting', 'WAIT_BUYER_PAY');
        if (node.code === UNKNOWN_OUTCOME) return trade('waiting', str(node.sub_code) ?? 'UNKNOWN');
        throw rejected(node);
      }
      default:
        throw new Error(`${input.code} is not an Alipay channel`);
    }
  }

  async queryPayment(outTradeNo: string): Promise<TradeSnapshot> {
    const node = await this.#call('alipay.trade.query', { out_trade_no: outTradeNo });
    if (isTradeNotExist(node)) return notFoundTrade(outTradeNo, TRADE_NOT_EXIST, node);
    if (node.code !== SUCCESS) throw rejected(node);
    return readAnswer('alipay', () => {
      const providerState = str(node.trade_status);
      return tradeOf(node, outTradeNo, tradeState(providerState), providerState as string, 'send_pay_date');
    });
  }

  async closePayment(outTradeNo: string): Promise<void> {
    const node = await this.#call('alipay.trade.close', { out_trade_no: outTradeNo });
    // A page, wap or QR trade does not exist until the payer opens the cashier: nothing left to close.
    if (node.code === SUCCESS || isTradeNotExist(node)) return;
    throw rejected(node);
  }

  async refund(input: RefundInput): Promise<RefundSnapshot> {
    const reason = input.reason === null ? '' : cut(input.reason, REFUND_REASON_MAX);
    const node = await this.#call('alipay.trade.refund', {
      out_trade_no: input.outTradeNo,
      refund_amount: fenToYuan(input.amount),
      out_request_no: input.outRefundNo,
      ...(reason.trim() === '' ? {} : { refund_reason: reason }),
    });
    if (node.code !== SUCCESS) throw rejected(node);
    // fund_change N: this call moved no money (e.g. a repeat of a refund already made); ask.
    if (node.fund_change !== 'Y') return this.queryRefund(input.outRefundNo, input.outTradeNo);
    return readAnswer('alipay', () => ({
      outRefundNo: input.outRefundNo,
      state: 'succeeded',
      amount: input.amount,
      channelRefundNo: null,
      finishedAt: timeOf(node.gmt_refund_pay, 'gmt_refund_pay'),
      failureReason: null,
      providerState: 'REFUND_SUCCESS',
      raw: node,
    }));
  }

  async queryRefund(outRefundNo: string, outTradeNo: string): Promise<RefundSnapshot> {
    const node = await this.#call('alipay.trade.fastpay.refund.query', {
      out_trade_no: outTradeNo,
      out_request_no: outRefundNo,
      query_options: ['gmt_refund_pay'],
    });
    const status = node.code === SUCCESS ? str(node.refund_status) : null;
    // Alipay answers 10000 without refund fields for a refund it does not know (research §B.5).
    if ((node.code === SUCCESS && status === null) || isTradeNotExist(node)) {
      return notFoundRefund(outRefundNo, str(node.sub_code) ?? 'REFUND_NOT_FOUND', node);
    }
    if (node.code !== SUCCESS) throw rejected(node);
    return readAnswer('alipay', () => {
      const succeeded = status === 'REFUND_SUCCESS';
      return {
        outRefundNo: str(node.out_request_no) ?? outRefundNo,
        state: succeeded ? 'succeeded' : 'processing',
        amount: amountOf(node.refund_amount, 'refund_amount'),
        channelRefundNo: null,
        finishedAt: succeeded ? timeOf(node.gmt_refund_pay, 'gmt_refund_pay') : null,
        failureReason: null,
        providerState: status as string,
        raw: node,
      };
    });
  }

  verifyCallback(request: CallbackRequest): VerifiedCallback {
    const form = parseForm(request.rawBody);
    if (Object.keys(form).length === 0)
      throw new CallbackRejected('malformed_body', 'the notify body is empty');
    let fields: Record<string, string>;
    try {
      fields = verifyAlipayNotify(form as AlipayForm, this.#keys.alipayPublicKey);
    } catch (error) {
      if (error instanceof AlipaySignatureError) throw new CallbackRejected(error.reason, error.message);
      throw error;
    }
    if (fields.app_id !== this.#config.appId) {
      throw new CallbackRejected(
        'merchant_mismatch',
        `the notify is for app_id ${JSON.stringify((fields.app_id ?? '(none)').slice(0, 32))}`,
      );
    }
    const outTradeNo = str(fields.out_trade_no);
    if (outTradeNo === null) throw new CallbackRejected('malformed_notify', 'the notify has no out_trade_no');
    return readCallback((): VerifiedCallback => {
      if (fields.refund_fee !== undefined || fields.out_biz_no !== undefined) {
        const outRefundNo = str(fields.out_biz_no);
        if (outRefundNo === null)
          throw new Malformed('malformed_notify', 'a refund notify without out_biz_no');
        return {
          kind: 'refund',
          outTradeNo,
          refund: {
            outRefundNo,
            state: 'succeeded',
            // refund_fee is the trade's cumulative refunded total, not this refund's amount.
            amount: null,
            channelRefundNo: null,
            finishedAt: timeOf(fields.gmt_refund, 'gmt_refund'),
            failureReason: null,
            providerState: str(fields.trade_status) ?? 'REFUND_SUCCESS',
            raw: fields,
          },
        };
      }
      const providerState = str(fields.trade_status);
      const state = tradeState(providerState);
      return {
        kind: 'payment',
        trade: tradeOf(fields, outTradeNo, state, providerState as string, 'gmt_payment'),
      };
    });
  }

  callbackAnswer(accepted: boolean): CallbackAnswer {
    return { status: 200, contentType: 'text/plain', body: accepted ? 'success' : 'failure' };
  }

  // ------------------------------------------------------------------------------------------ wire

  /**
   * One gateway call: the signed parameters posted as a form. Returns the verified response node,
   * whatever its code; an unsigned failure is a rejection (nothing is concluded from it), an unsigned
   * or forged success an invalid response.
   */
  async #call(method: string, bizContent: Json, notifyUrl?: string): Promise<Json> {
    const params = signAlipayRequest(
      {
        appId: this.#config.appId,
        method,
        bizContent,
        now: this.#clock.now(),
        ...(notifyUrl ? { notifyUrl } : {}),
      },
      this.#keys.appPrivateKey,
    );
    let response: HttpResponse;
    try {
      response = await this.#transport({
        method: 'POST',
        url: this.#config.gateway,
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded;charset=utf-8',
          Accept: 'application/json',
          'User-Agent': USER_AGENT,
        },
        body: encodeAlipayParams(params),
      });
    } catch (error) {
      throw channelUnreachable('alipay', error);
    }
    if (response.status < 200 || response.status >= 300) {
      throw new ChannelError(
        'alipay',
        'unreachable',
        `HTTP_${response.status}`,
        `the gateway answered HTTP ${response.status}`,
        {
          httpStatus: response.status,
        },
      );
    }
    try {
      const verified = verifyAlipayResponse(response.body, method, this.#keys.alipayPublicKey);
      if (verified.key === ALIPAY_ERROR_RESPONSE_KEY) throw rejected(verified.node);
      return verified.node;
    } catch (error) {
      if (!(error instanceof AlipaySignatureError)) throw error;
      const unsigned = error.reason === 'missing_sign' ? unsignedNode(response.body, method) : undefined;
      if (unsigned !== undefined && unsigned.code !== SUCCESS) throw rejected(unsigned);
      throw new ChannelError(
        'alipay',
        'invalid_response',
        'INVALID_SIGNATURE',
        `the gateway answer is refused (${error.reason}): ${error.message}`,
        { cause: error },
      );
    }
  }
}

/** The node of an unsigned answer, read only to report the error it carries. */
function unsignedNode(body: string, method: string): Json | undefined {
  try {
    return JSON.parse(extractAlipayResponseNode(body, method).text) as Json;
  } catch {
    return undefined;
  }
}

/** A GET URL of the gateway carrying signed parameters (page and wap payments open it in the browser). */
function pageUrl(gateway: string, params: Readonly<Record<string, string>>): string {
  return `${gateway}${gateway.includes('?') ? '&' : '?'}${encodeAlipayParams(params)}`;
}
