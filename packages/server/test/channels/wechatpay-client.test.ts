import { describe, expect, it } from 'vitest';
import { Formatter, Rsa } from 'wechatpay-axios-plugin';
import {
  type ChannelClient,
  type CreatePaymentInput,
  isTransientChannelError,
} from '../../src/channels/channel-client.js';
import type { ChannelCode } from '../../src/channels/channel-codes.js';
import { createChannelClient } from '../../src/channels/create-client.js';
import type { HttpRequest, HttpResponse, HttpTransport } from '../../src/channels/http-transport.js';
import { encryptWechatPayResource } from '../../src/channels/wechatpay/aead.js';
import { WechatPayClient, wechatPayText } from '../../src/channels/wechatpay/client.js';
import { parseWechatPayConfig, type WechatPayConfig } from '../../src/channels/wechatpay/config.js';
import { appPaySignMessage, jsapiPaySignMessage } from '../../src/channels/wechatpay/invoke.js';
import { rsaSha256Verify } from '../../src/channels/wechatpay/rsa.js';
import {
  signWechatPayResponse,
  verifyWechatPayRequest,
  type WechatPayAuthorization,
} from '../../src/channels/wechatpay/signature.js';
import { ManualClock } from '../../src/clock.js';
import { VERSION } from '../../src/version.js';
import { FakeProvider } from './fixtures/fake-provider.js';
import { newRsaPair } from './fixtures/keys.js';
import { channelError, rejection } from './fixtures/thrown.js';
import { WX } from './fixtures/vectors.js';

/**
 * WechatPayClient against a fake WeChat Pay played with the crypto layer's server-side helpers: every
 * request the client sends is verified as WeChat would verify it, and every answer is signed (or not,
 * or forged) as the test decides.
 */

const merchant = newRsaPair();
const platform = newRsaPair();
const stranger = newRsaPair();
const BASE = 'http://127.0.0.1:8080/__sandbox/wechatpay';
const START = '2026-01-01T00:00:00.000Z';
const NOTIFY_URL = 'https://pay.example.com/notify/order/7';

const config: WechatPayConfig = parseWechatPayConfig({
  mchId: WX.mchid,
  appId: WX.appid,
  apiV3Key: WX.apiV3Key,
  merchantSerialNo: WX.merchantSerial,
  merchantPrivateKey: merchant.privatePem,
  platformPublicKey: platform.publicPem,
  platformPublicKeyId: WX.pubKeyId,
  baseUrl: BASE,
});

type Signing = 'platform' | 'none' | 'stranger' | 'signtest' | 'stale' | 'tampered' | 'unknown_serial';

interface Reply {
  status: number;
  /** An object is serialised once; a string is sent as it is. */
  body?: unknown;
  signing?: Signing;
}

interface Seen {
  request: HttpRequest;
  /** Path and query as a server reads them off the request line. */
  path: string;
  auth: WechatPayAuthorization;
  json: unknown;
}

function signedHeaders(body: string, signing: Signing, now: Date): Record<string, string> {
  if (signing === 'none') return { 'content-type': 'application/json' };
  const key = signing === 'stranger' ? stranger.privateKey : platform.privateKey;
  const at = signing === 'stale' ? new Date(now.getTime() - 6 * 60_000) : now;
  const headers: Record<string, string> = signWechatPayResponse({
    body,
    privateKey: key,
    serial: signing === 'unknown_serial' ? 'PUB_KEY_ID_0000000000000000000000000000000099' : WX.pubKeyId,
    now: at,
  });
  if (signing === 'signtest')
    headers['Wechatpay-Signature'] = `WECHATPAY/SIGNTEST/${headers['Wechatpay-Signature']}`;
  // undici hands headers over lower-cased.
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** A fake WeChat Pay: checks each request as the real one does, answers from a queue. */
class FakeWechatPay extends FakeProvider<Reply, Seen> {
  constructor(readonly clock: ManualClock) {
    super();
  }

  readonly transport: HttpTransport = async (request) => {
    const url = new URL(request.url);
    const path = `${url.pathname}${url.search}`;
    let auth: WechatPayAuthorization;
    try {
      auth = verifyWechatPayRequest({
        method: request.method,
        url: path,
        body: request.body ?? '',
        authorization: request.headers.Authorization,
        resolveKey: (mchId, serial) =>
          mchId === WX.mchid && serial === WX.merchantSerial ? merchant.publicKey : undefined,
        now: this.clock.now(),
      });
    } catch (error) {
      // As WeChat answers a request it cannot verify: the test then fails on SIGN_ERROR.
      const text = JSON.stringify({ code: 'SIGN_ERROR', message: String(error) });
      return { status: 401, headers: signedHeaders(text, 'platform', this.clock.now()), body: text };
    }
    const reply = this.next(
      { request, path, auth, json: request.body === undefined ? undefined : JSON.parse(request.body) },
      `${request.method} ${path}`,
    );
    const text =
      reply.body === undefined
        ? ''
        : typeof reply.body === 'string'
          ? reply.body
          : JSON.stringify(reply.body);
    const headers = signedHeaders(text, reply.signing ?? 'platform', this.clock.now());
    const body = reply.signing === 'tampered' ? text.replace('1234', '1') : text;
    return { status: reply.status, headers, body } satisfies HttpResponse;
  };
}

function setup() {
  const clock = new ManualClock(START);
  const wx = new FakeWechatPay(clock);
  const client = new WechatPayClient(config, { transport: wx.transport, clock });
  return { clock, wx, client };
}

const order = (code: ChannelCode, patch: Partial<CreatePaymentInput> = {}): CreatePaymentInput => ({
  code,
  outTradeNo: 'A20260101000001',
  amount: 1234,
  subject: '会员月卡',
  expireAt: new Date('2026-01-01T00:30:00.000Z'),
  notifyUrl: NOTIFY_URL,
  returnUrl: 'https://shop.example.com/done',
  userIp: '203.0.113.7',
  extras: {},
  ...patch,
});

const transaction = (patch: Record<string, unknown> = {}) => ({
  appid: WX.appid,
  mchid: WX.mchid,
  out_trade_no: 'A20260101000001',
  transaction_id: '4200000000202601010000000001',
  trade_type: 'NATIVE',
  trade_state: 'SUCCESS',
  trade_state_desc: '支付成功',
  bank_type: 'OTHERS',
  success_time: '2026-01-01T08:05:06+08:00',
  payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  amount: { total: 1234, payer_total: 1200, currency: 'CNY', payer_currency: 'CNY' },
  ...patch,
});

describe('WechatPayClient requests', () => {
  it('wx_native: signs the path with the base URL prefix, sends the documented headers and body, shows code_url', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: { code_url: 'weixin://wxpay/bizpayurl?pr=abc123' } });
    const created = await client.createPayment(order('wx_native'));
    expect(created).toEqual({ display: { mode: 'qr_code', content: 'weixin://wxpay/bizpayurl?pr=abc123' } });

    const { request, path, auth, json } = wx.last;
    expect(request.method).toBe('POST');
    expect(request.url).toBe(`${BASE}/v3/pay/transactions/native`);
    // The fake verified the signature over this path, prefix included (as the sandbox does).
    expect(path).toBe('/__sandbox/wechatpay/v3/pay/transactions/native');
    expect(auth).toMatchObject({ mchId: WX.mchid, serialNo: WX.merchantSerial, timestamp: '1767225600' });
    expect(request.headers).toMatchObject({
      Accept: 'application/json',
      'Content-Type': 'application/json',
      'User-Agent': `paycenter/${VERSION}`,
      'Wechatpay-Serial': WX.pubKeyId,
    });
    expect(request.headers.Authorization).toMatch(/^WECHATPAY2-SHA256-RSA2048 mchid="1900000001",/);
    expect(json).toEqual({
      appid: WX.appid,
      mchid: WX.mchid,
      description: '会员月卡',
      out_trade_no: 'A20260101000001',
      time_expire: '2026-01-01T08:30:00+08:00',
      notify_url: NOTIFY_URL,
      amount: { total: 1234, currency: 'CNY' },
    });
  });

  it('an independent implementation (wechatpay-axios-plugin) verifies the signature the client sent', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: { code_url: 'weixin://wxpay/bizpayurl?pr=abc123' } });
    await client.createPayment(order('wx_native'));
    const { request, path, auth } = wx.last;
    const message = Formatter.request('POST', path, auth.timestamp, auth.nonce, request.body ?? '');
    const key = Rsa.from(merchant.publicPem, Rsa.KEY_TYPE_PUBLIC);
    expect(Rsa.verify(message, auth.signature, key)).toBe(true);
    const withoutPrefix = Formatter.request(
      'POST',
      '/v3/pay/transactions/native',
      auth.timestamp,
      auth.nonce,
      request.body ?? '',
    );
    expect(Rsa.verify(withoutPrefix, auth.signature, key)).toBe(false);
  });

  it('signs the bare /v3 path when the base URL is the real host', async () => {
    const clock = new ManualClock(START);
    const wx = new FakeWechatPay(clock);
    const client = new WechatPayClient(
      { ...config, baseUrl: 'https://api.mch.weixin.qq.com' },
      { transport: wx.transport, clock },
    );
    wx.reply({ status: 200, body: { code_url: 'weixin://wxpay/bizpayurl?pr=x' } });
    await client.createPayment(order('wx_native'));
    expect(wx.last.request.url).toBe('https://api.mch.weixin.qq.com/v3/pay/transactions/native');
    expect(wx.last.path).toBe('/v3/pay/transactions/native');
  });

  it.each(['wx_jsapi', 'wx_lite'] as const)(
    '%s: sends payer.openid and shows the signed JSAPI parameters',
    async (code) => {
      const { wx, client } = setup();
      wx.reply({ status: 200, body: { prepay_id: 'wx201410272009395522657a690389285100' } });
      const created = await client.createPayment(order(code, { extras: { openid: 'oOPENID123' } }));
      expect(wx.last.request.url).toBe(`${BASE}/v3/pay/transactions/jsapi`);
      expect(wx.last.json).toMatchObject({
        appid: WX.appid,
        mchid: WX.mchid,
        payer: { openid: 'oOPENID123' },
      });
      expect(created.display.mode).toBe('jsapi');
      const params = JSON.parse(created.display.content) as Record<string, string>;
      expect(params).toMatchObject({
        appId: WX.appid,
        timeStamp: '1767225600',
        package: 'prepay_id=wx201410272009395522657a690389285100',
        signType: 'RSA',
      });
      expect(params.nonceStr).toMatch(/^[0-9A-Za-z]{32}$/);
      const message = jsapiPaySignMessage(
        WX.appid,
        '1767225600',
        params.nonceStr as string,
        'wx201410272009395522657a690389285100',
      );
      expect(rsaSha256Verify(message, params.paySign as string, merchant.publicKey)).toBe(true);
    },
  );

  it.each(['wx_jsapi', 'wx_lite'] as const)(
    '%s without channelExtras.openid fails before any request',
    async (code) => {
      const { wx, client } = setup();
      await expect(client.createPayment(order(code))).rejects.toThrow(/openid/);
      expect(wx.seen).toHaveLength(0);
    },
  );

  it("wx_h5: sends scene_info with the payer's IP and the H5 type (Wap by default), shows h5_url", async () => {
    const { wx, client } = setup();
    const h5Url = 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1&package=2';
    wx.reply({ status: 200, body: { h5_url: h5Url } }, { status: 200, body: { h5_url: h5Url } });
    const created = await client.createPayment(order('wx_h5'));
    expect(created).toEqual({ display: { mode: 'url', content: h5Url } });
    expect(wx.last.request.url).toBe(`${BASE}/v3/pay/transactions/h5`);
    expect(wx.last.json).toMatchObject({
      scene_info: { payer_client_ip: '203.0.113.7', h5_info: { type: 'Wap' } },
    });
    await client.createPayment(order('wx_h5', { extras: { h5Type: 'iOS' } }));
    expect(wx.last.json).toMatchObject({ scene_info: { h5_info: { type: 'iOS' } } });
  });

  it('wx_h5 without the payer IP fails before any request', async () => {
    const { wx, client } = setup();
    await expect(client.createPayment(order('wx_h5', { userIp: null }))).rejects.toThrow(/IP/);
    expect(wx.seen).toHaveLength(0);
  });

  it('wx_app: shows the signed OpenSDK parameters (bare prepay_id signed)', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: { prepay_id: 'wx2600000000000000000000000000000' } });
    const created = await client.createPayment(order('wx_app'));
    expect(wx.last.request.url).toBe(`${BASE}/v3/pay/transactions/app`);
    expect(wx.last.json).not.toHaveProperty('payer');
    expect(created.display.mode).toBe('app');
    const params = JSON.parse(created.display.content) as Record<string, string>;
    expect(params).toMatchObject({
      appid: WX.appid,
      partnerid: WX.mchid,
      prepayid: 'wx2600000000000000000000000000000',
      package: 'Sign=WXPay',
      timestamp: '1767225600',
    });
    const message = appPaySignMessage(
      WX.appid,
      '1767225600',
      params.noncestr as string,
      'wx2600000000000000000000000000000',
    );
    expect(rsaSha256Verify(message, params.sign as string, merchant.publicKey)).toBe(true);
  });

  it('cuts the description to 127 characters, counting characters (not bytes or UTF-16 units), without emoji', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: { code_url: 'weixin://x' } });
    await client.createPayment(order('wx_native', { subject: `${'商'.repeat(126)}😀品${'x'.repeat(10)}` }));
    const description = (wx.last.json as { description: string }).description;
    expect(description).toBe(`${'商'.repeat(126)}品`);
    expect(Array.from(description)).toHaveLength(127);
    expect(wechatPayText('a😀b', 2)).toBe('ab');
    expect(wechatPayText(`${'a'.repeat(126)}\u{20000}z`, 127)).toBe(`${'a'.repeat(126)}z`);
    expect(wechatPayText('  ', 10)).toBe('');
  });

  it('refuses a channel code of the other provider', async () => {
    const { client } = setup();
    await expect(client.createPayment(order('alipay_qr'))).rejects.toThrow(/not a WeChat Pay channel/);
  });
});

describe('WechatPayClient queries and closes', () => {
  it('queries by out_trade_no with mchid in the signed query, and reads a paid transaction', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: transaction() });
    const trade = await client.queryPayment('A20260101000001');
    const { request, path, json } = wx.last;
    expect(request.method).toBe('GET');
    expect(request.url).toBe(`${BASE}/v3/pay/transactions/out-trade-no/A20260101000001?mchid=${WX.mchid}`);
    expect(path).toBe(
      `/__sandbox/wechatpay/v3/pay/transactions/out-trade-no/A20260101000001?mchid=${WX.mchid}`,
    );
    expect(request.body).toBeUndefined();
    expect(json).toBeUndefined();
    expect(request.headers).not.toHaveProperty('Content-Type');
    expect(request.headers).toMatchObject({
      Accept: 'application/json',
      'User-Agent': `paycenter/${VERSION}`,
    });
    expect(trade).toEqual({
      outTradeNo: 'A20260101000001',
      state: 'paid',
      amount: 1234, // amount.total, not payer_total (after coupons)
      channelTradeNo: '4200000000202601010000000001',
      payerId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
      paidAt: new Date('2026-01-01T00:05:06.000Z'),
      providerState: 'SUCCESS',
      raw: transaction(),
    });
  });

  it.each([
    ['SUCCESS', 'paid'],
    ['REFUND', 'paid'],
    ['NOTPAY', 'waiting'],
    ['USERPAYING', 'waiting'],
    ['CLOSED', 'closed'],
    ['REVOKED', 'closed'],
    ['PAYERROR', 'closed'],
  ])('trade_state %s → %s', async (tradeState, state) => {
    const { wx, client } = setup();
    const paid = state === 'paid';
    wx.reply({
      status: 200,
      body: transaction({
        trade_state: tradeState,
        ...(paid ? {} : { success_time: undefined, transaction_id: undefined, payer: undefined }),
      }),
    });
    const trade = await client.queryPayment('A20260101000001');
    expect(trade.state).toBe(state);
    expect(trade.providerState).toBe(tradeState);
    expect(trade.paidAt).toEqual(paid ? new Date('2026-01-01T00:05:06.000Z') : null);
    expect(trade.payerId).toBe(paid ? 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' : null);
  });

  it('404 ORDER_NOT_EXIST is an answer: state not_found', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 404, body: { code: 'ORDER_NOT_EXIST', message: '订单不存在' } });
    const trade = await client.queryPayment('A20260101000001');
    expect(trade).toMatchObject({ outTradeNo: 'A20260101000001', state: 'not_found', amount: null });
    expect(trade.providerState).toBe('ORDER_NOT_EXIST');
  });

  it('an unknown trade_state or an unreadable success_time is an invalid response', async () => {
    const { wx, client } = setup();
    wx.reply(
      { status: 200, body: transaction({ trade_state: 'ON_THE_MOON' }) },
      { status: 200, body: transaction({ success_time: 'yesterday' }) },
    );
    expect(await channelError(client.queryPayment('A20260101000001'))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'MALFORMED_RESPONSE',
    });
    expect(await channelError(client.queryPayment('A20260101000001'))).toMatchObject({
      kind: 'invalid_response',
    });
  });

  it.each<[string, unknown]>([
    ['a string', { total: '1234', currency: 'CNY' }],
    ['negative', { total: -1, currency: 'CNY' }],
    ['fractional', { total: 12.34, currency: 'CNY' }],
    ['not an object', 1234],
  ])('an amount that is %s is an invalid response, never an unknown amount', async (_what, amount) => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: transaction({ amount }) });
    const error = await channelError(client.queryPayment('A20260101000001'));
    expect(error).toMatchObject({ kind: 'invalid_response', providerCode: 'MALFORMED_RESPONSE' });
    expect(error.message).toMatch(/amount/);
  });

  it('closes with {mchid}; a signed 204 resolves', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 204 });
    await expect(client.closePayment('A20260101000001')).resolves.toBeUndefined();
    const { request, path, json } = wx.last;
    expect(request.method).toBe('POST');
    expect(path).toBe('/__sandbox/wechatpay/v3/pay/transactions/out-trade-no/A20260101000001/close');
    expect(request.body).toBe(`{"mchid":"${WX.mchid}"}`);
    expect(json).toEqual({ mchid: WX.mchid });
  });

  it('closing an order WeChat does not know, or one already closed, resolves', async () => {
    const { wx, client } = setup();
    wx.reply(
      { status: 404, body: { code: 'ORDER_NOT_EXIST', message: '订单不存在' } },
      { status: 400, body: { code: 'ORDER_CLOSED', message: '订单已关闭' } },
    );
    await expect(client.closePayment('A1')).resolves.toBeUndefined();
    await expect(client.closePayment('A1')).resolves.toBeUndefined();
  });

  it.each(['ORDERPAID', 'ORDER_PAID'])(
    'closing a paid order (%s) is a rejection the caller sees',
    async (code) => {
      const { wx, client } = setup();
      wx.reply({ status: 400, body: { code, message: '订单已支付' } });
      const error = await channelError(client.closePayment('A1'));
      expect(error).toMatchObject({
        provider: 'wechatpay',
        kind: 'rejected',
        providerCode: code,
        httpStatus: 400,
      });
      expect(error.message).toBe('订单已支付');
    },
  );

  it('an unsigned 204 is not believed', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 204, signing: 'none' });
    expect(await channelError(client.closePayment('A1'))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'INVALID_SIGNATURE',
      httpStatus: 204,
    });
  });
});

describe('WechatPayClient refunds', () => {
  const refundInput = {
    outTradeNo: 'A20260101000001',
    outRefundNo: 'R20260101000001',
    amount: 234,
    total: 1234,
    reason: '商品缺货',
    notifyUrl: 'https://pay.example.com/notify/refund/7',
  };
  const refundBody = (patch: Record<string, unknown> = {}) => ({
    refund_id: '50000000382019052709732678859',
    out_refund_no: 'R20260101000001',
    transaction_id: '4200000000202601010000000001',
    out_trade_no: 'A20260101000001',
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    create_time: '2026-01-01T08:10:00+08:00',
    status: 'PROCESSING',
    amount: { total: 1234, refund: 234, payer_total: 1234, payer_refund: 234, currency: 'CNY' },
    ...patch,
  });

  it('posts the refund and reads PROCESSING', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: refundBody() });
    const refund = await client.refund(refundInput);
    expect(wx.last.request.url).toBe(`${BASE}/v3/refund/domestic/refunds`);
    expect(wx.last.path).toBe('/__sandbox/wechatpay/v3/refund/domestic/refunds');
    expect(wx.last.json).toEqual({
      out_trade_no: 'A20260101000001',
      out_refund_no: 'R20260101000001',
      reason: '商品缺货',
      notify_url: 'https://pay.example.com/notify/refund/7',
      amount: { refund: 234, total: 1234, currency: 'CNY' },
    });
    expect(refund).toEqual({
      outRefundNo: 'R20260101000001',
      state: 'processing',
      amount: 234,
      channelRefundNo: '50000000382019052709732678859',
      finishedAt: null,
      failureReason: null,
      providerState: 'PROCESSING',
      raw: refundBody(),
    });
  });

  it('leaves reason out when there is none', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: refundBody() });
    await client.refund({ ...refundInput, reason: null });
    expect(wx.last.json).not.toHaveProperty('reason');
  });

  it.each([
    ['SUCCESS', 'succeeded'],
    ['ABNORMAL', 'held'],
    ['CLOSED', 'failed'],
  ])('refund status %s → %s', async (status, state) => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: refundBody({ status, success_time: '2026-01-01T08:11:00+08:00' }) });
    const refund = await client.refund(refundInput);
    expect(refund.state).toBe(state);
    expect(refund.finishedAt).toEqual(state === 'succeeded' ? new Date('2026-01-01T00:11:00.000Z') : null);
    if (state === 'failed' || state === 'held') expect(refund.failureReason).toEqual(expect.any(String));
    else expect(refund.failureReason).toBeNull();
  });

  it('a refund WeChat refuses keeps its code and message', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 403, body: { code: 'NOT_ENOUGH', message: '余额不足' } });
    expect(await channelError(client.refund(refundInput))).toMatchObject({
      kind: 'rejected',
      providerCode: 'NOT_ENOUGH',
      message: '余额不足',
      httpStatus: 403,
    });
  });

  it.each([
    [500, 'SYSTEM_ERROR', true],
    [429, 'FREQUENCY_LIMITED', true],
    [500, 'BANK_ERROR', true],
    [503, 'SOMETHING_NEW', true],
    [403, 'NOT_ENOUGH', false],
    [400, 'PARAM_ERROR', false],
  ])('a %i %s answer: worth asking again = %s', async (status, code, retryable) => {
    const { wx, client } = setup();
    wx.reply({ status, body: { code, message: '…' } });
    const error = await channelError(client.refund(refundInput));
    expect([error.kind, error.retryable, isTransientChannelError(error)]).toEqual([
      'rejected',
      retryable,
      retryable,
    ]);
  });

  it('queries a refund by out_refund_no', async () => {
    const { wx, client } = setup();
    wx.reply({
      status: 200,
      body: refundBody({ status: 'SUCCESS', success_time: '2026-01-01T08:11:00+08:00' }),
    });
    const refund = await client.queryRefund('R20260101000001', 'A20260101000001');
    expect(wx.last.request.method).toBe('GET');
    expect(wx.last.path).toBe('/__sandbox/wechatpay/v3/refund/domestic/refunds/R20260101000001');
    expect(wx.last.request.body).toBeUndefined();
    expect(refund).toMatchObject({ state: 'succeeded', amount: 234, providerState: 'SUCCESS' });
  });

  it('404 RESOURCE_NOT_EXISTS on a refund query → not_found', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 404, body: { code: 'RESOURCE_NOT_EXISTS', message: '退款单不存在' } });
    expect(await client.queryRefund('R1', 'A1')).toMatchObject({
      outRefundNo: 'R1',
      state: 'not_found',
      providerState: 'RESOURCE_NOT_EXISTS',
    });
  });
});

describe('WechatPayClient errors', () => {
  it('a signed 4xx is a rejection with the provider code and message', async () => {
    const { wx, client } = setup();
    wx.reply({
      status: 400,
      body: {
        code: 'PARAM_ERROR',
        message: '参数错误',
        detail: { field: '/amount/total', location: 'body' },
      },
    });
    const error = await channelError(client.createPayment(order('wx_native')));
    expect(error).toMatchObject({
      provider: 'wechatpay',
      kind: 'rejected',
      providerCode: 'PARAM_ERROR',
      message: '参数错误',
      httpStatus: 400,
    });
  });

  it('an unsigned error with a code is still a rejection (WeChat does not sign every error)', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 500, body: { code: 'SYSTEM_ERROR', message: '系统错误' }, signing: 'none' });
    expect(await channelError(client.createPayment(order('wx_native')))).toMatchObject({
      kind: 'rejected',
      providerCode: 'SYSTEM_ERROR',
      httpStatus: 500,
    });
  });

  it('an error answer whose signature headers do not verify is an invalid response', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 401, body: { code: 'SIGN_ERROR', message: '签名错误' }, signing: 'stranger' });
    expect(await channelError(client.createPayment(order('wx_native')))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'INVALID_SIGNATURE',
      httpStatus: 401,
    });
  });

  it('a non-2xx answer without a WeChat error code (a proxy page) is no answer at all', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 502, body: '<html>Bad Gateway</html>', signing: 'none' });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'unreachable',
      providerCode: 'HTTP_502',
      httpStatus: 502,
    });
  });

  it.each([
    ['none', 'missing_header'],
    ['stranger', 'bad_signature'],
    ['signtest', 'signtest_probe'],
    ['stale', 'stale_timestamp'],
    ['tampered', 'bad_signature'],
    ['unknown_serial', 'unknown_serial'],
  ] as const)('a 2xx signed %s is refused as invalid_response (%s)', async (signing, reason) => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: transaction(), signing });
    const error = await channelError(client.queryPayment('A20260101000001'));
    expect(error).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'INVALID_SIGNATURE',
      httpStatus: 200,
    });
    expect(error.message).toContain(reason);
  });

  it('a signed 2xx that is not a JSON object, or lacks the promised field, is an invalid response', async () => {
    const { wx, client } = setup();
    wx.reply({ status: 200, body: 'not json' }, { status: 200, body: '[1,2]' }, { status: 200, body: {} });
    for (let i = 0; i < 3; i++) {
      expect(await channelError(client.createPayment(order('wx_native')))).toMatchObject({
        kind: 'invalid_response',
        providerCode: 'MALFORMED_RESPONSE',
      });
    }
  });

  it('a transport failure is unreachable: NETWORK_ERROR, or TIMEOUT for a timeout', async () => {
    const { wx, client } = setup();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8080'), { code: 'ECONNREFUSED' });
    const headersTimeout = Object.assign(new Error('Headers Timeout Error'), {
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    wx.reply(
      refused,
      new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
      headersTimeout,
    );
    const first = await channelError(client.createPayment(order('wx_native')));
    expect(first).toMatchObject({
      provider: 'wechatpay',
      kind: 'unreachable',
      providerCode: 'NETWORK_ERROR',
    });
    expect(first.cause).toBe(refused);
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'unreachable',
      providerCode: 'TIMEOUT',
    });
    expect(await channelError(client.closePayment('A1'))).toMatchObject({
      kind: 'unreachable',
      providerCode: 'TIMEOUT',
    });
  });
});

describe('WechatPayClient callbacks', () => {
  interface CallbackOptions {
    eventType?: string;
    originalType?: string;
    resource?: Record<string, unknown>;
    apiV3Key?: string;
    signing?: Signing;
    at?: Date;
    mutateBody?: (body: string) => string;
    mutateEnvelope?: (envelope: Record<string, unknown>) => void;
  }

  function callback(options: CallbackOptions = {}) {
    const originalType = options.originalType ?? 'transaction';
    const envelope: Record<string, unknown> = {
      id: 'EV-2026010100000000001',
      create_time: '2026-01-01T08:05:07+08:00',
      resource_type: 'encrypt-resource',
      event_type: options.eventType ?? 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource: encryptWechatPayResource({
        plaintext: JSON.stringify(options.resource ?? transaction()),
        apiV3Key: options.apiV3Key ?? WX.apiV3Key,
        associatedData: originalType,
        originalType,
      }),
    };
    options.mutateEnvelope?.(envelope);
    const body = JSON.stringify(envelope);
    const headers = signedHeaders(body, options.signing ?? 'platform', options.at ?? new Date(START));
    return {
      headers,
      rawBody: options.mutateBody ? options.mutateBody(body) : body,
      contentType: 'application/json',
    };
  }

  it('a signed, encrypted payment callback → the paid trade', () => {
    const { client } = setup();
    const verified = client.verifyCallback(callback());
    expect(verified).toEqual({
      kind: 'payment',
      trade: {
        outTradeNo: 'A20260101000001',
        state: 'paid',
        amount: 1234,
        channelTradeNo: '4200000000202601010000000001',
        payerId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
        paidAt: new Date('2026-01-01T00:05:06.000Z'),
        providerState: 'SUCCESS',
        raw: transaction(),
      },
    });
  });

  it('accepts Node-style headers (lower-case, arrays of one)', () => {
    const { client } = setup();
    const request = callback();
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, [v]]));
    expect(client.verifyCallback({ ...request, headers }).kind).toBe('payment');
  });

  it.each([
    ['REFUND.SUCCESS', 'SUCCESS', 'succeeded'],
    ['REFUND.ABNORMAL', 'ABNORMAL', 'held'],
    ['REFUND.CLOSED', 'CLOSED', 'failed'],
  ])('a %s callback → the refund, %s → %s', (eventType, refundStatus, state) => {
    const { client } = setup();
    const resource = {
      mchid: WX.mchid,
      out_trade_no: 'A20260101000001',
      transaction_id: '4200000000202601010000000001',
      out_refund_no: 'R20260101000001',
      refund_id: '50000000382019052709732678859',
      refund_status: refundStatus,
      ...(refundStatus === 'SUCCESS' ? { success_time: '2026-01-01T08:11:00+08:00' } : {}),
      user_received_account: '支付用户零钱',
      amount: { total: 1234, refund: 234, payer_total: 1234, payer_refund: 234 },
    };
    const verified = client.verifyCallback(callback({ eventType, originalType: 'refund', resource }));
    expect(verified).toEqual({
      kind: 'refund',
      outTradeNo: 'A20260101000001',
      refund: {
        outRefundNo: 'R20260101000001',
        state,
        amount: 234,
        channelRefundNo: '50000000382019052709732678859',
        finishedAt: state === 'succeeded' ? new Date('2026-01-01T00:11:00.000Z') : null,
        failureReason: state === 'failed' || state === 'held' ? expect.any(String) : null,
        providerState: refundStatus,
        raw: resource,
      },
    });
  });

  const otherKey = 'An0therMerchantsApiV3Key32Bytes!';

  it.each<[string, CallbackOptions, string]>([
    [
      'a tampered body',
      { mutateBody: (b) => b.replace('TRANSACTION.SUCCESS', 'TRANSACTION.SUCCEED') },
      'bad_signature',
    ],
    ['a signature by another key', { signing: 'stranger' }, 'bad_signature'],
    ['an unknown Wechatpay-Serial', { signing: 'unknown_serial' }, 'unknown_serial'],
    ['no signature headers', { signing: 'none' }, 'missing_header'],
    ['the SIGNTEST probe', { signing: 'signtest' }, 'signtest_probe'],
    ['a timestamp six minutes old', { signing: 'stale' }, 'stale_timestamp'],
    [
      'a tampered ciphertext (re-signed)',
      {
        mutateEnvelope: (e) => {
          const resource = e.resource as { ciphertext: string };
          const bytes = Buffer.from(resource.ciphertext, 'base64');
          bytes[0] = (bytes[0] as number) ^ 1;
          resource.ciphertext = bytes.toString('base64');
        },
      },
      'decrypt_failed',
    ],
    ['another APIv3 key', { apiV3Key: otherKey }, 'decrypt_failed'],
    ['another merchant (mchid)', { resource: transaction({ mchid: '1900000002' }) }, 'merchant_mismatch'],
    ['another AppID', { resource: transaction({ appid: 'wx0000000000000000' }) }, 'merchant_mismatch'],
    [
      'a refund of another merchant',
      { eventType: 'REFUND.SUCCESS', originalType: 'refund', resource: { mchid: '1' } },
      'merchant_mismatch',
    ],
    ['an event we do not handle', { eventType: 'TRANSACTION.CLOSED' }, 'unsupported_event'],
    ['a body without the envelope fields', { mutateEnvelope: (e) => delete e.event_type }, 'malformed_body'],
    ['an unknown trade_state', { resource: transaction({ trade_state: 'MAYBE' }) }, 'unknown_state'],
    [
      'an amount that is not whole fen',
      { resource: transaction({ amount: { total: 12.34, currency: 'CNY' } }) },
      'invalid_amount',
    ],
    [
      'a transaction without out_trade_no',
      { resource: transaction({ out_trade_no: undefined }) },
      'malformed_resource',
    ],
    [
      'a refund without out_refund_no',
      {
        eventType: 'REFUND.SUCCESS',
        originalType: 'refund',
        resource: { mchid: WX.mchid, out_trade_no: 'A20260101000001', refund_status: 'SUCCESS' },
      },
      'malformed_resource',
    ],
    [
      'a refund with an unknown refund_status',
      {
        eventType: 'REFUND.SUCCESS',
        originalType: 'refund',
        resource: {
          mchid: WX.mchid,
          out_trade_no: 'A20260101000001',
          out_refund_no: 'R20260101000001',
          refund_status: 'MAYBE',
        },
      },
      'unknown_state',
    ],
    [
      'a refund whose amount.refund is not a number',
      {
        eventType: 'REFUND.SUCCESS',
        originalType: 'refund',
        resource: {
          mchid: WX.mchid,
          out_trade_no: 'A20260101000001',
          out_refund_no: 'R20260101000001',
          refund_status: 'SUCCESS',
          amount: { total: 1234, refund: '234' },
        },
      },
      'invalid_amount',
    ],
  ])('refuses %s', (_what, options, reason) => {
    const { client } = setup();
    const error = rejection(() => client.verifyCallback(callback(options)));
    expect(error.reason).toBe(reason);
    expect(error.message).not.toContain(WX.apiV3Key);
  });

  it('refuses malformed JSON (signed as it is) with malformed_body', () => {
    const { client } = setup();
    const rawBody = '{"id":"EV-1",';
    const headers = signedHeaders(rawBody, 'platform', new Date(START));
    expect(
      rejection(() => client.verifyCallback({ headers, rawBody, contentType: 'application/json' })).reason,
    ).toBe('malformed_body');
  });

  it('a callback signed at the edge of the window passes; past it, it is stale', () => {
    const { client, clock } = setup();
    const request = callback();
    clock.advance(300_000);
    expect(client.verifyCallback(request).kind).toBe('payment');
    clock.advance(1_000);
    expect(rejection(() => client.verifyCallback(request)).reason).toBe('stale_timestamp');
  });

  it('answers in WeChat’s format: 200 SUCCESS, or 400 FAIL so that WeChat retries', () => {
    const { client } = setup();
    expect(client.callbackAnswer(true)).toEqual({
      status: 200,
      contentType: 'application/json',
      body: '{"code":"SUCCESS","message":"成功"}',
    });
    expect(client.callbackAnswer(false)).toEqual({
      status: 400,
      contentType: 'application/json',
      body: '{"code":"FAIL","message":"失败"}',
    });
  });
});

describe('createChannelClient', () => {
  it('builds the client of the credentials’ provider', () => {
    const clock = new ManualClock(START);
    const client: ChannelClient = createChannelClient(
      { provider: 'wechatpay', config },
      { transport: new FakeWechatPay(clock).transport, clock },
    );
    expect(client).toBeInstanceOf(WechatPayClient);
    expect(client.provider).toBe('wechatpay');
  });
});
