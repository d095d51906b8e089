import type { KeyObject } from 'node:crypto';
import { randomNonce, rsaSha256Sign, unixSeconds } from './rsa.js';

/**
 * The signed parameters a payer's client needs to open WeChat Pay's cashier (research §A.5,
 * "Client-side invoke parameters"). Both are signed with the merchant API private key.
 */

/** For `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` (JSAPI) and `wx.requestPayment` (mini-program). */
export interface WechatPayJsapiParams {
  appId: string;
  /** Unix seconds, as a string. */
  timeStamp: string;
  nonceStr: string;
  /** `prepay_id=<id>`. */
  package: string;
  signType: 'RSA';
  paySign: string;
}

/** For the OpenSDK's `PayReq` in a native app. */
export interface WechatPayAppParams {
  appid: string;
  /** The merchant id (mchid). */
  partnerid: string;
  prepayid: string;
  package: 'Sign=WXPay';
  noncestr: string;
  timestamp: string;
  sign: string;
}

export interface InvokeParamsInput {
  /** The AppID the prepay was made for (a mini-program's own AppID for `wx_lite`; its client omits it, the signature still uses it). */
  appId: string;
  prepayId: string;
  privateKey: KeyObject;
  now: Date;
  nonce?: string;
}

function checkPart(what: string, value: string): void {
  if (value === '' || value.includes('\n')) throw new TypeError(`${what} must be non-empty and on one line`);
}

/** `appId\ntimeStamp\nnonceStr\nprepay_id=<id>\n` */
export function jsapiPaySignMessage(
  appId: string,
  timeStamp: string,
  nonceStr: string,
  prepayId: string,
): string {
  for (const [what, value] of [
    ['appId', appId],
    ['timeStamp', timeStamp],
    ['nonceStr', nonceStr],
    ['prepayId', prepayId],
  ] as const) {
    checkPart(what, value);
  }
  return `${appId}\n${timeStamp}\n${nonceStr}\nprepay_id=${prepayId}\n`;
}

/** `appid\ntimestamp\nnoncestr\n<bare prepay_id>\n`: unlike JSAPI, no `prepay_id=` prefix. */
export function appPaySignMessage(
  appId: string,
  timestamp: string,
  nonceStr: string,
  prepayId: string,
): string {
  for (const [what, value] of [
    ['appid', appId],
    ['timestamp', timestamp],
    ['noncestr', nonceStr],
    ['prepayid', prepayId],
  ] as const) {
    checkPart(what, value);
  }
  return `${appId}\n${timestamp}\n${nonceStr}\n${prepayId}\n`;
}

/** The JSAPI / mini-program parameters with their `paySign`. */
export function wechatPayJsapiParams(input: InvokeParamsInput): WechatPayJsapiParams {
  const timeStamp = String(unixSeconds(input.now));
  const nonceStr = input.nonce ?? randomNonce();
  return {
    appId: input.appId,
    timeStamp,
    nonceStr,
    package: `prepay_id=${input.prepayId}`,
    signType: 'RSA',
    paySign: rsaSha256Sign(
      jsapiPaySignMessage(input.appId, timeStamp, nonceStr, input.prepayId),
      input.privateKey,
    ),
  };
}

/** The APP (OpenSDK) parameters with their `sign`. `partnerid` and `package` are not signed. */
export function wechatPayAppParams(input: InvokeParamsInput & { mchId: string }): WechatPayAppParams {
  const timestamp = String(unixSeconds(input.now));
  const noncestr = input.nonce ?? randomNonce();
  return {
    appid: input.appId,
    partnerid: input.mchId,
    prepayid: input.prepayId,
    package: 'Sign=WXPay',
    noncestr,
    timestamp,
    sign: rsaSha256Sign(
      appPaySignMessage(input.appId, timestamp, noncestr, input.prepayId),
      input.privateKey,
    ),
  };
}
