import { AlipaySdk } from 'alipay-sdk';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlipaySignatureError } from '../../src/channels/alipay/errors.js';
import { rsa2Sign } from '../../src/channels/alipay/keys.js';
import { signAlipayResponse, verifyAlipayResponse } from '../../src/channels/alipay/response.js';
import {
  alipayAppOrderString,
  signAlipayNotify,
  signAlipayParams,
  signAlipayRequest,
  verifyAlipayNotify,
  verifyAlipayRequestSignature,
} from '../../src/channels/alipay/signature.js';
import { formatAlipayTime } from '../../src/channels/alipay/time.js';
import { decodeForm, referenceNotifyBody } from './fixtures/alipay-reference.js';
import { newRsaPair } from './fixtures/keys.js';
import { ALI, B2_SUCCESS_NODE, B3_NOTIFY } from './fixtures/vectors.js';

/**
 * Cross-checks against the official alipay-sdk (research §C.1). Where Alipay's rules and the SDK
 * agree, both sides must accept each other's output; where the SDK deviates (§C.1 pitfalls 1, 2, 4, 7)
 * the tests pin down that we follow Alipay's rule.
 */

const app = newRsaPair();
const alipay = newRsaPair();

/** The SDK as a merchant uses it: app private key, Alipay public key. */
const merchantSdk = new AlipaySdk({
  appId: ALI.appId,
  privateKey: app.privatePem,
  keyType: 'PKCS8',
  alipayPublicKey: alipay.publicPem,
  camelcase: false,
});
/** The SDK's verifier pointed at the application's public key, to judge our request signatures. */
const requestJudge = new AlipaySdk({
  appId: ALI.appId,
  privateKey: app.privatePem,
  keyType: 'PKCS8',
  alipayPublicKey: app.publicPem,
});
const without = (params: Record<string, string>, ...keys: string[]) =>
  Object.fromEntries(Object.entries(params).filter(([k]) => !keys.includes(k)));

describe('our Alipay request signatures against alipay-sdk', () => {
  const bizContent = { out_trade_no: 'PC20251123000002', total_amount: '88.88', subject: '测试商品' };

  it('alipay-sdk verifies our signed request, and refuses it once a parameter changes', () => {
    const signed = signAlipayRequest(
      {
        appId: ALI.appId,
        method: 'alipay.trade.precreate',
        bizContent,
        now: new Date('2025-11-23T06:00:00Z'),
        notifyUrl: 'https://pay.example.com/notify/order/7',
      },
      app.privateKey,
    );
    expect(requestJudge.checkNotifySignV2({ ...signed })).toBe(true);
    expect(
      requestJudge.checkNotifySignV2({
        ...signed,
        biz_content: signed.biz_content?.replace('88.88', '0.01'),
      }),
    ).toBe(false);
  });

  it('gives a byte-identical signature for the parameter set alipay-sdk builds (sdkExecute)', () => {
    const theirs = decodeForm(
      merchantSdk.sdkExecute('alipay.trade.app.pay', {
        bizContent,
        notifyUrl: 'https://pay.example.com/notify/order/7',
        timestamp: '2025-11-23 14:00:00',
      }),
    );
    expect(theirs.sign).toMatch(/^[A-Za-z0-9+/]{342}==$/);
    expect(signAlipayParams(without(theirs, 'sign'), app.privateKey).sign).toBe(theirs.sign);
  });

  it('our app-pay order string carries the same parameters and signature as sdkExecute', () => {
    const theirs = decodeForm(
      merchantSdk.sdkExecute('alipay.trade.app.pay', { bizContent, timestamp: '2025-11-23 14:00:00' }),
    );
    const ours = signAlipayParams(without(theirs, 'sign'), app.privateKey);
    expect(decodeForm(alipayAppOrderString(ours))).toEqual(theirs);
  });

  it('our sandbox-side verifier accepts what alipay-sdk sends (pageExecute, sdkExecute), alipay_sdk included', () => {
    const url = new URL(
      merchantSdk.pageExecute('alipay.trade.page.pay', 'GET', {
        bizContent: { ...bizContent, product_code: 'FAST_INSTANT_TRADE_PAY' },
        notifyUrl: 'https://pay.example.com/notify/order/7',
        returnUrl: 'https://shop.example/thanks?order=1&x=%20y',
      }),
    );
    const params = Object.fromEntries(url.searchParams);
    expect(params).toHaveProperty('alipay_sdk');
    expect(verifyAlipayRequestSignature(params, app.publicKey)).toContain('alipay_sdk=');
    const order = decodeForm(merchantSdk.sdkExecute('alipay.trade.app.pay', { bizContent }));
    expect(verifyAlipayRequestSignature(order, app.publicKey)).toContain('method=alipay.trade.app.pay');
    expect(() =>
      verifyAlipayRequestSignature({ ...order, app_id: '2021000000000002' }, app.publicKey),
    ).toThrow(AlipaySignatureError);
  });
});

describe('Alipay notifies: ours against alipay-sdk', () => {
  it('alipay-sdk verifies notifies we sign (checkNotifySign and checkNotifySignV2), and refuses them tampered', () => {
    const posted = decodeForm(new URLSearchParams(signAlipayNotify(B3_NOTIFY, alipay.privateKey)).toString());
    expect(merchantSdk.checkNotifySign({ ...posted })).toBe(true);
    expect(merchantSdk.checkNotifySignV2({ ...posted })).toBe(true);
    expect(merchantSdk.checkNotifySignV2({ ...posted, total_amount: '0.01' })).toBe(false);
  });

  it('a notify alipay-sdk accepts, we accept; one it refuses as tampered, we refuse', () => {
    const posted = decodeForm(referenceNotifyBody(B3_NOTIFY, alipay.privateKey));
    expect(merchantSdk.checkNotifySignV2({ ...posted })).toBe(true);
    expect(verifyAlipayNotify(posted, alipay.publicKey).trade_status).toBe('TRADE_SUCCESS');
    const tampered = { ...posted, seller_id: '2088000000000666' };
    expect(merchantSdk.checkNotifySignV2({ ...tampered })).toBe(false);
    expect(() => verifyAlipayNotify(tampered, alipay.publicKey)).toThrow(AlipaySignatureError);
  });

  it('even from input with empty fields, our signed notifies pass alipay-sdk (empty fields are never sent)', () => {
    const signed = signAlipayNotify(
      { ...B3_NOTIFY, body: '', passback_params: undefined },
      alipay.privateKey,
    );
    expect(merchantSdk.checkNotifySignV2({ ...signed })).toBe(true);
  });
});

describe('Alipay responses: ours against alipay-sdk', () => {
  it('alipay-sdk checkResponseSign accepts the responses we sign, and refuses them tampered', () => {
    const body = signAlipayResponse({
      method: 'alipay.trade.precreate',
      node: B2_SUCCESS_NODE,
      privateKey: alipay.privateKey,
    });
    const { sign } = JSON.parse(body) as { sign: string };
    expect(() =>
      merchantSdk.checkResponseSign(body, 'alipay_trade_precreate_response', sign, 't'),
    ).not.toThrow();
    const tampered = body.replace('bax00000simulator', 'bax00000attacker0');
    expect(() =>
      merchantSdk.checkResponseSign(tampered, 'alipay_trade_precreate_response', sign, 't'),
    ).toThrow();
    expect(() => verifyAlipayResponse(tampered, 'alipay.trade.precreate', alipay.publicKey)).toThrow(
      AlipaySignatureError,
    );
  });
});

describe('where alipay-sdk deviates from Alipay, we follow Alipay (research §C.1)', () => {
  const savedTz = process.env.TZ;
  afterEach(() => {
    vi.useRealTimers();
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  it('pitfall 1: alipay-sdk signs an empty parameter as "key="; the gateway rule (our sandbox) refuses that', () => {
    const url = new URL(
      merchantSdk.pageExecute('alipay.trade.page.pay', 'GET', {
        bizContent: {
          out_trade_no: 'PC1',
          total_amount: '0.01',
          subject: 's',
          product_code: 'FAST_INSTANT_TRADE_PAY',
        },
        notifyUrl: '',
      }),
    );
    const params = Object.fromEntries(url.searchParams);
    expect(params.notify_url).toBe('');
    expect(() => verifyAlipayRequestSignature(params, app.publicKey)).toThrow(/does not verify/);
    // We drop the empty parameter before signing, so both the rule and alipay-sdk accept ours.
    const ours = signAlipayParams({ ...without(params, 'sign'), notify_url: '' }, app.privateKey);
    expect(ours).not.toHaveProperty('notify_url');
    expect(verifyAlipayRequestSignature(ours, app.publicKey)).not.toContain('notify_url');
    expect(requestJudge.checkNotifySignV2({ ...ours })).toBe(true);
  });

  it('pitfall 2a: checkNotifySign decodes "%" a second time and refuses a valid notify; we accept it', () => {
    const posted = decodeForm(
      referenceNotifyBody({ ...B3_NOTIFY, passback_params: 'order%3D42%26src%3Dweb' }, alipay.privateKey),
    );
    expect(merchantSdk.checkNotifySign({ ...posted })).toBe(false);
    expect(merchantSdk.checkNotifySignV2({ ...posted })).toBe(true);
    expect(verifyAlipayNotify(posted, alipay.publicKey).passback_params).toBe('order%3D42%26src%3Dweb');
  });

  it('pitfall 2b: alipay-sdk signs empty notify fields as "key=" and refuses a notify whose empty field was not signed; we accept it', () => {
    const posted = decodeForm(referenceNotifyBody({ ...B3_NOTIFY, body: '' }, alipay.privateKey));
    expect(posted.body).toBe('');
    expect(merchantSdk.checkNotifySignV2({ ...posted })).toBe(false);
    expect(verifyAlipayNotify(posted, alipay.publicKey).out_trade_no).toBe('PC20251123000002');
  });

  it('pitfall 4: alipay-sdk stamps requests with the host zone; ours are Beijing time in any zone', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2025-11-23T06:00:00Z'));
    process.env.TZ = 'UTC';
    const sdkStamp = () =>
      decodeForm(merchantSdk.sdkExecute('alipay.trade.app.pay', { bizContent: { out_trade_no: 'A' } }))
        .timestamp;
    expect(sdkStamp()).toBe('2025-11-23 06:00:00');
    expect(
      signAlipayRequest({ appId: ALI.appId, method: 'alipay.trade.app.pay', now: new Date() }, app.privateKey)
        .timestamp,
    ).toBe('2025-11-23 14:00:00');
    process.env.TZ = 'Asia/Shanghai';
    expect(sdkStamp()).toBe('2025-11-23 14:00:00');
    expect(formatAlipayTime(new Date())).toBe('2025-11-23 14:00:00');
  });

  it('pitfall 7: alipay-sdk cuts the node up to the last "sign" and has no \\/ fallback; we brace-match and fall back', () => {
    const method = 'alipay.trade.precreate';
    const sign = rsa2Sign(B2_SUCCESS_NODE, alipay.privateKey);
    const signFirst = `{"sign":"${sign}","alipay_trade_precreate_response":${B2_SUCCESS_NODE}}`;
    expect(() =>
      merchantSdk.checkResponseSign(signFirst, 'alipay_trade_precreate_response', sign, 't'),
    ).toThrow();
    expect(verifyAlipayResponse(signFirst, method, alipay.publicKey).text).toBe(B2_SUCCESS_NODE);
    const escaped = `{"alipay_trade_precreate_response":${B2_SUCCESS_NODE.replaceAll('/', '\\/')},"sign":"${sign}"}`;
    expect(() =>
      merchantSdk.checkResponseSign(escaped, 'alipay_trade_precreate_response', sign, 't'),
    ).toThrow();
    expect(verifyAlipayResponse(escaped, method, alipay.publicKey).node.qr_code).toBe(
      'https://qr.alipay.com/bax00000simulator',
    );
  });
});
