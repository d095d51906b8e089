import type { KeyObject } from 'node:crypto';
import { AlipaySignatureError } from './errors.js';
import { rsa2Sign, rsa2Verify } from './keys.js';
import { formatAlipayTime } from './time.js';

/**
 * Alipay OpenAPI (gateway.do) RSA2 signatures over parameter sets (research §B.3, §B.6), following
 * Alipay's own rule (its Java SDK's `getSignContent`), not `alipay-sdk`'s deviations (§C.1):
 * sort the keys (ASCII / UTF-16 code unit order, as Java's `Collections.sort`), drop `sign` (and, for
 * notifies, `sign_type`), drop every empty value, join `key=value` with `&`, raw values, no encoding.
 */

/** A parameter set as it goes on (or came off) the wire. `undefined` and `null` mean "not sent". */
export type AlipayParams = Readonly<Record<string, string | undefined | null>>;

/** Java's `Character.isWhitespace`: Unicode space separators except the no-break ones, plus U+0009–U+000D and U+001C–U+001F. */
function isJavaWhitespace(code: number): boolean {
  return (
    (code >= 0x09 && code <= 0x0d) ||
    (code >= 0x1c && code <= 0x20) ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x2006) ||
    (code >= 0x2008 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x205f ||
    code === 0x3000
  );
}

/**
 * "Empty" as Alipay's `StringUtils.isEmpty` means it: null, `''`, or only whitespace. Such parameters
 * are not signed, so they must not be sent either (we drop them from what we sign and send).
 */
export function isAlipayEmpty(value: string | undefined | null): boolean {
  if (value === undefined || value === null) return true;
  for (let i = 0; i < value.length; i++) if (!isJavaWhitespace(value.charCodeAt(i))) return false;
  return true;
}

function sortedKeys(params: AlipayParams): string[] {
  // Default sort compares UTF-16 code units, exactly as Java's String.compareTo does.
  return Object.keys(params).sort();
}

/** The string to sign for a request: every non-empty parameter except `sign`. `sign_type` stays in. */
export function alipaySignContent(params: AlipayParams, exclude: readonly string[] = ['sign']): string {
  return sortedKeys(params)
    .filter((key) => !exclude.includes(key) && !isAlipayEmpty(params[key]))
    .map((key) => `${key}=${params[key]}`)
    .join('&');
}

/** The string Alipay signs for an async notify: every non-empty field except `sign` and `sign_type`. */
export function alipayNotifyContent(params: AlipayParams): string {
  return alipaySignContent(params, ['sign', 'sign_type']);
}

function withoutEmpty(params: AlipayParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of sortedKeys(params)) {
    const value = params[key];
    if (!isAlipayEmpty(value)) out[key] = value as string;
  }
  return out;
}

/**
 * Signs a parameter set with the application private key: returns the parameters to send, without
 * the empty ones (which the gateway would not sign either), with `sign` added.
 */
export function signAlipayParams(params: AlipayParams, privateKey: KeyObject): Record<string, string> {
  const { sign: _ignored, ...rest } = params;
  const clean = withoutEmpty(rest);
  return { ...clean, sign: rsa2Sign(alipaySignContent(clean), privateKey) };
}

export interface AlipayRequestInput {
  appId: string;
  method: string;
  /** The business parameters: an object (serialised with JSON.stringify once) or the exact JSON text. */
  bizContent?: Readonly<Record<string, unknown>> | string;
  /** The request time, written as Beijing time whatever the machine's zone. */
  now: Date;
  notifyUrl?: string;
  returnUrl?: string;
  appAuthToken?: string;
  /** Other common parameters (e.g. `app_cert_sn`); empty values are dropped. */
  extra?: AlipayParams;
}

/** The common parameters of a gateway call (research §B.2), unsigned, empty ones left out. */
export function alipayRequestParams(input: AlipayRequestInput): Record<string, string> {
  const bizContent =
    input.bizContent === undefined
      ? undefined
      : typeof input.bizContent === 'string'
        ? input.bizContent
        : JSON.stringify(input.bizContent);
  return withoutEmpty({
    ...input.extra,
    app_id: input.appId,
    method: input.method,
    format: 'JSON',
    charset: 'utf-8',
    sign_type: 'RSA2',
    timestamp: formatAlipayTime(input.now),
    version: '1.0',
    notify_url: input.notifyUrl,
    return_url: input.returnUrl,
    app_auth_token: input.appAuthToken,
    biz_content: bizContent,
  });
}

/** The common parameters of a gateway call, signed: what goes into the query/form of `gateway.do`. */
export function signAlipayRequest(input: AlipayRequestInput, privateKey: KeyObject): Record<string, string> {
  return signAlipayParams(alipayRequestParams(input), privateKey);
}

/**
 * Parameters as `key=value&…` in key order, each part percent-encoded once (RFC 3986,
 * `encodeURIComponent`): a gateway form body, a page-pay query string, an app order string.
 */
export function encodeAlipayParams(params: Readonly<Record<string, string>>): string {
  return sortedKeys(params)
    .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(params[key] as string)}`)
    .join('&');
}

/** The order string an app hands to Alipay's mobile SDK (`alipay.trade.app.pay`, our `alipay_app`). */
export function alipayAppOrderString(signedParams: Readonly<Record<string, string>>): string {
  if (!signedParams.sign) throw new TypeError('the order string needs signed parameters');
  return encodeAlipayParams(signedParams);
}

/** A form as a framework hands it over (`@fastify/formbody`: a repeated field becomes an array). */
export type AlipayForm = Readonly<Record<string, string | readonly string[] | undefined>>;

function singleValued(form: AlipayForm): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(form)) {
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw new AlipaySignatureError('malformed_notify', `field ${key} is given more than once`);
    }
    out[key] = value;
  }
  return out;
}

function checkSignType(signType: string | undefined): void {
  if (signType !== undefined && signType !== 'RSA2') {
    throw new AlipaySignatureError('unsupported_sign_type', `sign_type ${signType} is not RSA2`);
  }
}

/**
 * Verifies a request signed by an application (what the gateway does, and so the sandbox):
 * query and form parameters merged by the caller, decoded once. Returns the string that was checked,
 * which the gateway echoes in `sub_msg` when it refuses.
 */
export function verifyAlipayRequestSignature(params: AlipayForm, appPublicKey: KeyObject): string {
  const fields = singleValued(params);
  const sign = fields.sign;
  if (!sign) throw new AlipaySignatureError('missing_sign', 'the request has no sign');
  if (fields.sign_type === undefined)
    throw new AlipaySignatureError('unsupported_sign_type', 'sign_type is missing');
  checkSignType(fields.sign_type);
  const content = alipaySignContent(fields);
  if (!rsa2Verify(content, sign, appPublicKey)) {
    throw new AlipaySignatureError('bad_signature', 'the request signature does not verify');
  }
  return content;
}

/**
 * Verifies an async notify (form POST to `notify_url`) or a `return_url` query with the Alipay public
 * key: fields decoded once by the form parser, `sign` and `sign_type` excluded, empty values skipped.
 * Returns the fields (as strings). Checking app_id, out_trade_no, amounts and seller_id against our
 * own records is the caller's job.
 *
 * Only if that fails and the form carries empty fields is the string with those fields kept as
 * `key=` also tried: Alipay's Java `rsaCheckV1` builds it that way. The two strings differ only in
 * empty values, so accepting either lets no one change a non-empty field.
 */
export function verifyAlipayNotify(form: AlipayForm, alipayPublicKey: KeyObject): Record<string, string> {
  const fields = singleValued(form);
  const sign = fields.sign;
  if (!sign) throw new AlipaySignatureError('missing_sign', 'the notify has no sign');
  checkSignType(fields.sign_type);
  if (rsa2Verify(alipayNotifyContent(fields), sign, alipayPublicKey)) return fields;
  const keys = sortedKeys(fields).filter((key) => key !== 'sign' && key !== 'sign_type');
  if (keys.some((key) => isAlipayEmpty(fields[key]))) {
    const withEmpty = keys.map((key) => `${key}=${fields[key]}`).join('&');
    if (rsa2Verify(withEmpty, sign, alipayPublicKey)) return fields;
  }
  throw new AlipaySignatureError('bad_signature', 'the notify signature does not verify');
}

/**
 * Signs a notify as Alipay does (the sandbox's side): empty fields are dropped (Alipay never sends
 * them), `sign_type=RSA2` is added, and the signature covers every field but `sign` and `sign_type`.
 */
export function signAlipayNotify(fields: AlipayParams, alipayPrivateKey: KeyObject): Record<string, string> {
  const { sign: _sign, sign_type: _signType, ...rest } = fields;
  const clean = withoutEmpty(rest);
  return { ...clean, sign_type: 'RSA2', sign: rsa2Sign(alipayNotifyContent(clean), alipayPrivateKey) };
}
