import { parseRfc3339 } from './crypto.js';
import type { TradeType } from './state.js';

/** An error answered in WeChat's format: HTTP status and `{"code","message","detail"?}`. */
export class WechatPayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'WechatPayError';
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

type Location = 'body' | 'query' | 'uri_template';

/** 400 PARAM_ERROR with WeChat's `detail` (`field` is a JSON pointer into the request). */
export function paramError(
  field: string,
  issue: string,
  value?: unknown,
  location: Location = 'body',
): WechatPayError {
  return new WechatPayError(400, 'PARAM_ERROR', `${field}: ${issue}`, {
    field,
    ...(value !== undefined ? { value } : {}),
    issue,
    location,
  });
}

export function invalidRequest(message: string): WechatPayError {
  return new WechatPayError(400, 'INVALID_REQUEST', message);
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

const charLength = (value: string): number => [...value].length;

function object(parent: Json, key: string, pointer: string, required: boolean): Json | undefined {
  const value = parent[key];
  if (value === undefined) {
    if (required) throw paramError(pointer, 'required');
    return undefined;
  }
  if (!isObject(value)) throw paramError(pointer, 'must be an object', value);
  return value;
}

function string(
  parent: Json,
  key: string,
  pointer: string,
  options: { required: boolean; max: number; min?: number; pattern?: RegExp; patternIssue?: string },
): string | undefined {
  const value = parent[key];
  if (value === undefined) {
    if (options.required) throw paramError(pointer, 'required');
    return undefined;
  }
  if (typeof value !== 'string') throw paramError(pointer, 'must be a string', value);
  const length = charLength(value);
  if (length < (options.min ?? 1) || length > options.max) {
    throw paramError(pointer, `length must be ${options.min ?? 1} to ${options.max}`, value);
  }
  if (options.pattern && !options.pattern.test(value)) {
    throw paramError(pointer, options.patternIssue ?? 'has an invalid format', value);
  }
  return value;
}

function positiveInteger(parent: Json, key: string, pointer: string): number {
  const value = parent[key];
  if (value === undefined) throw paramError(pointer, 'required');
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw paramError(pointer, 'must be an integer', value);
  if (value < 1) throw paramError(pointer, 'must be at least 1', value);
  return value;
}

function currency(parent: Json, pointer: string, required: boolean): void {
  const value = parent.currency;
  if (value === undefined && !required) return;
  if (value !== 'CNY') throw paramError(pointer, 'must be CNY', value);
}

function boolean(parent: Json, key: string, pointer: string): void {
  const value = parent[key];
  if (value !== undefined && typeof value !== 'boolean')
    throw paramError(pointer, 'must be a boolean', value);
}

/**
 * `notify_url`: absolute http(s), no query string (§A.4). Real WeChat also wants https and a public host;
 * the sandbox allows http and loopback so a developer's machine can receive callbacks.
 */
function notifyUrl(
  parent: Json,
  key: string,
  pointer: string,
  required: boolean,
  max: number,
): string | undefined {
  const value = string(parent, key, pointer, { required, max });
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw paramError(pointer, 'must be an absolute URL', value);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw paramError(pointer, 'must be an http(s) URL', value);
  if (value.includes('?') || value.includes('#'))
    throw paramError(pointer, 'must not carry a query string', value);
  return value;
}

export const OUT_TRADE_NO = /^[0-9A-Za-z_\-*|]{6,32}$/;
export const OUT_REFUND_NO = /^[0-9A-Za-z_\-*@|]{1,64}$/;

export interface PrepayRequest {
  appid: string;
  mchid: string;
  description: string;
  outTradeNo: string;
  timeExpire: Date | null;
  attach: string | null;
  notifyUrl: string;
  total: number;
  payerOpenid: string | null;
}

/** The fields of a prepay body (§A.5), checked as WeChat checks them. Unknown fields are ignored. */
export function parsePrepay(body: unknown, tradeType: TradeType): PrepayRequest {
  if (!isObject(body)) throw paramError('/', 'the body must be a JSON object');
  const appid = string(body, 'appid', '/appid', { required: true, max: 32 })!;
  const mchid = string(body, 'mchid', '/mchid', { required: true, max: 32 })!;
  const description = string(body, 'description', '/description', { required: true, max: 127 })!;
  const outTradeNo = string(body, 'out_trade_no', '/out_trade_no', {
    required: true,
    max: 32,
    min: 6,
    pattern: OUT_TRADE_NO,
    patternIssue: 'must be 6 to 32 of 0-9 A-Z a-z _ - * |',
  })!;
  const timeExpireText = string(body, 'time_expire', '/time_expire', { required: false, max: 64 });
  let timeExpire: Date | null = null;
  if (timeExpireText !== undefined) {
    timeExpire = parseRfc3339(timeExpireText);
    if (!timeExpire)
      throw paramError('/time_expire', 'must be an RFC 3339 date-time with an offset', timeExpireText);
  }
  const attach = string(body, 'attach', '/attach', { required: false, max: 128 }) ?? null;
  const notify = notifyUrl(body, 'notify_url', '/notify_url', true, 255)!;
  string(body, 'goods_tag', '/goods_tag', { required: false, max: 32 });
  boolean(body, 'support_fapiao', '/support_fapiao');
  const amount = object(body, 'amount', '/amount', true)!;
  const total = positiveInteger(amount, 'total', '/amount/total');
  currency(amount, '/amount/currency', false);
  object(body, 'detail', '/detail', false);
  object(body, 'settle_info', '/settle_info', false);

  const scene = object(body, 'scene_info', '/scene_info', tradeType === 'MWEB');
  if (scene) {
    string(scene, 'payer_client_ip', '/scene_info/payer_client_ip', {
      required: tradeType === 'MWEB',
      max: 45,
    });
    if (tradeType === 'MWEB') {
      const h5 = object(scene, 'h5_info', '/scene_info/h5_info', true)!;
      const type = string(h5, 'type', '/scene_info/h5_info/type', { required: true, max: 32 });
      if (type !== 'iOS' && type !== 'Android' && type !== 'Wap') {
        throw paramError('/scene_info/h5_info/type', 'must be iOS, Android or Wap', type);
      }
    }
  }

  let payerOpenid: string | null = null;
  const payer = object(body, 'payer', '/payer', tradeType === 'JSAPI');
  if (tradeType === 'JSAPI' && payer) {
    payerOpenid = string(payer, 'openid', '/payer/openid', { required: true, max: 128 })!;
  }
  return { appid, mchid, description, outTradeNo, timeExpire, attach, notifyUrl: notify, total, payerOpenid };
}

export interface RefundRequest {
  outTradeNo: string | null;
  transactionId: string | null;
  outRefundNo: string;
  reason: string | null;
  notifyUrl: string | null;
  refund: number;
  total: number;
}

/** The fields of a refund body (§A.5). */
export function parseRefund(body: unknown): RefundRequest {
  if (!isObject(body)) throw paramError('/', 'the body must be a JSON object');
  const transactionId =
    string(body, 'transaction_id', '/transaction_id', { required: false, max: 32 }) ?? null;
  const outTradeNo = string(body, 'out_trade_no', '/out_trade_no', { required: false, max: 32 }) ?? null;
  if (transactionId === null && outTradeNo === null) {
    throw paramError('/out_trade_no', 'transaction_id or out_trade_no is required');
  }
  const outRefundNo = string(body, 'out_refund_no', '/out_refund_no', {
    required: true,
    max: 64,
    pattern: OUT_REFUND_NO,
    patternIssue: 'must be 1 to 64 of 0-9 A-Z a-z _ - * @ |',
  })!;
  const reason = string(body, 'reason', '/reason', { required: false, max: 80 }) ?? null;
  const notify = notifyUrl(body, 'notify_url', '/notify_url', false, 256) ?? null;
  const fundsAccount = string(body, 'funds_account', '/funds_account', { required: false, max: 32 });
  if (fundsAccount !== undefined && fundsAccount !== 'AVAILABLE') {
    throw paramError('/funds_account', 'must be AVAILABLE', fundsAccount);
  }
  const amount = object(body, 'amount', '/amount', true)!;
  const refund = positiveInteger(amount, 'refund', '/amount/refund');
  const total = positiveInteger(amount, 'total', '/amount/total');
  currency(amount, '/amount/currency', true);
  return { outTradeNo, transactionId, outRefundNo, reason, notifyUrl: notify, refund, total };
}
