import { AlipaySdk } from 'alipay-sdk';
import { describe, expect, it } from 'vitest';
import { AlipayClient } from '../../src/channels/alipay/client.js';
import { type AlipayConfig, parseAlipayConfig } from '../../src/channels/alipay/config.js';
import { signAlipayResponse } from '../../src/channels/alipay/response.js';
import { signAlipayNotify, verifyAlipayRequestSignature } from '../../src/channels/alipay/signature.js';
import {
  type CallbackRequest,
  type ChannelClient,
  type CreatePaymentInput,
  isTransientChannelError,
} from '../../src/channels/channel-client.js';
import type { ChannelCode } from '../../src/channels/channel-codes.js';
import { createChannelClient } from '../../src/channels/create-client.js';
import type { HttpRequest, HttpTransport } from '../../src/channels/http-transport.js';
import { ManualClock } from '../../src/clock.js';
import { VERSION } from '../../src/version.js';
import { decodeForm, referenceNotifyBody } from './fixtures/alipay-reference.js';
import { FakeProvider } from './fixtures/fake-provider.js';
import { newRsaPair } from './fixtures/keys.js';
import { channelError, rejection } from './fixtures/thrown.js';
import { ALI } from './fixtures/vectors.js';

/**
 * AlipayClient against a fake gateway played with the crypto layer's server-side helpers: every
 * request is verified as the gateway verifies it, every answer signed (or not, or forged) as the test
 * decides, and notifies are signed as Alipay signs them.
 */

const app = newRsaPair(); // the application's pair: signs requests
const alipay = newRsaPair(); // "Alipay's" pair: signs answers and notifies
const stranger = newRsaPair();
const GATEWAY = 'http://127.0.0.1:8080/__sandbox/alipay/gateway.do';
const START = '2026-01-01T00:00:00.000Z';
const NOTIFY_URL = 'https://pay.example.com/notify/order/9';

const config: AlipayConfig = parseAlipayConfig({
  appId: ALI.appId,
  privateKey: app.privatePem,
  alipayPublicKey: alipay.publicPem,
  gateway: GATEWAY,
});

/** alipay-sdk's verifier pointed at the application's public key: an independent judge of our signatures. */
const sdkJudge = new AlipaySdk({
  appId: ALI.appId,
  privateKey: app.privatePem,
  keyType: 'PKCS8',
  alipayPublicKey: app.publicPem,
});

type Signing = 'alipay' | 'none' | 'stranger' | 'tampered';
type Reply =
  | { node: Record<string, unknown>; signing?: Signing; errorResponse?: boolean }
  | { raw: string; status?: number };

interface Seen {
  request: HttpRequest;
  params: Record<string, string>;
  biz: Record<string, unknown>;
}

/** A fake gateway.do: checks each request's signature as the gateway does, answers from a queue. */
class FakeAlipay extends FakeProvider<Reply, Seen> {
  readonly transport: HttpTransport = async (request) => {
    const params = decodeForm(request.body ?? '');
    const method = params.method ?? '';
    try {
      verifyAlipayRequestSignature(params, app.publicKey);
    } catch (error) {
      const node = {
        code: '40002',
        msg: 'Invalid Arguments',
        sub_code: 'isv.invalid-signature',
        sub_msg: String(error),
      };
      return {
        status: 200,
        headers: {},
        body: signAlipayResponse({ method, node, privateKey: alipay.privateKey }),
      };
    }
    const reply = this.next(
      { request, params, biz: JSON.parse(params.biz_content ?? '{}') as Record<string, unknown> },
      method,
    );
    const headers = { 'content-type': 'text/html;charset=utf-8' };
    if ('raw' in reply) return { status: reply.status ?? 200, headers, body: reply.raw };
    const signing = reply.signing ?? 'alipay';
    const key = reply.errorResponse ? 'error_response' : `${method.replaceAll('.', '_')}_response`;
    let body: string;
    if (signing === 'none') body = `{"${key}":${JSON.stringify(reply.node)}}`;
    else {
      body = signAlipayResponse({
        method,
        node: reply.node,
        privateKey: signing === 'stranger' ? stranger.privateKey : alipay.privateKey,
        ...(reply.errorResponse ? { gatewayError: true } : {}),
      });
      if (signing === 'tampered') body = body.replace('12.34', '0.01');
    }
    return { status: 200, headers, body };
  };
}

function setup() {
  const clock = new ManualClock(START);
  const gateway = new FakeAlipay();
  const client = new AlipayClient(config, { transport: gateway.transport, clock });
  return { clock, gateway, client };
}

const order = (code: ChannelCode, patch: Partial<CreatePaymentInput> = {}): CreatePaymentInput => ({
  code,
  outTradeNo: 'A20260101000002',
  amount: 1234,
  subject: '会员月卡',
  expireAt: new Date('2026-01-01T00:30:00.000Z'),
  notifyUrl: NOTIFY_URL,
  returnUrl: 'https://shop.example.com/done?order=1',
  userIp: '203.0.113.7',
  extras: {},
  ...patch,
});

const ok = (fields: Record<string, unknown> = {}) => ({ code: '10000', msg: 'Success', ...fields });
const failed = (subCode: string, subMsg: string, fields: Record<string, unknown> = {}) => ({
  code: '40004',
  msg: 'Business Failed',
  sub_code: subCode,
  sub_msg: subMsg,
  ...fields,
});

/** The common parameters every signed request carries, in Beijing time. */
const COMMON = {
  app_id: ALI.appId,
  charset: 'utf-8',
  format: 'JSON',
  sign_type: 'RSA2',
  timestamp: '2026-01-01 08:00:00',
  version: '1.0',
};

describe('AlipayClient gateway calls', () => {
  it('alipay_qr: posts a signed form (Beijing time, no empty parameters) to precreate, shows qr_code', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: ok({ out_trade_no: 'A20260101000002', qr_code: 'https://qr.alipay.com/bax01234' }),
    });
    const created = await client.createPayment(order('alipay_qr'));
    expect(created).toEqual({ display: { mode: 'qr_code', content: 'https://qr.alipay.com/bax01234' } });

    const { request, params, biz } = gateway.last;
    expect(request.method).toBe('POST');
    expect(request.url).toBe(GATEWAY);
    expect(request.headers).toMatchObject({
      'Content-Type': 'application/x-www-form-urlencoded;charset=utf-8',
      'User-Agent': `paycenter/${VERSION}`,
    });
    expect(params).toEqual({
      ...COMMON,
      method: 'alipay.trade.precreate',
      notify_url: NOTIFY_URL,
      biz_content: expect.any(String),
      sign: expect.any(String),
    });
    expect(biz).toEqual({
      out_trade_no: 'A20260101000002',
      total_amount: '12.34',
      subject: '会员月卡',
      time_expire: '2026-01-01 08:30:00',
    });
    // The gateway's rule (fake) accepted it; so does alipay-sdk, an independent implementation.
    expect(verifyAlipayRequestSignature(params, app.publicKey)).toContain('method=alipay.trade.precreate');
    expect(sdkJudge.checkNotifySignV2({ ...params })).toBe(true);
  });

  it('alipay_pc: no server call; a GET URL of the gateway carrying the signed page.pay parameters', async () => {
    const { gateway, client } = setup();
    const created = await client.createPayment(order('alipay_pc'));
    expect(gateway.seen).toHaveLength(0);
    expect(created.display.mode).toBe('url');
    expect(created.display.content.startsWith(`${GATEWAY}?`)).toBe(true);
    const params = Object.fromEntries(new URL(created.display.content).searchParams);
    expect(params).toEqual({
      ...COMMON,
      method: 'alipay.trade.page.pay',
      notify_url: NOTIFY_URL,
      return_url: 'https://shop.example.com/done?order=1',
      biz_content: expect.any(String),
      sign: expect.any(String),
    });
    expect(JSON.parse(params.biz_content as string)).toEqual({
      out_trade_no: 'A20260101000002',
      total_amount: '12.34',
      subject: '会员月卡',
      time_expire: '2026-01-01 08:30:00',
      product_code: 'FAST_INSTANT_TRADE_PAY',
    });
    expect(() => verifyAlipayRequestSignature(params, app.publicKey)).not.toThrow();
    expect(sdkJudge.checkNotifySignV2({ ...params })).toBe(true);
  });

  it('alipay_pc without a return URL sends no return_url (never an empty parameter)', async () => {
    const { client } = setup();
    const created = await client.createPayment(order('alipay_pc', { returnUrl: null }));
    const params = Object.fromEntries(new URL(created.display.content).searchParams);
    expect(params).not.toHaveProperty('return_url');
    expect(() => verifyAlipayRequestSignature(params, app.publicKey)).not.toThrow();
  });

  it('alipay_wap: wap.pay with QUICK_WAP_WAY and quit_url from the extras', async () => {
    const { client } = setup();
    const created = await client.createPayment(
      order('alipay_wap', { extras: { quitUrl: 'https://shop.example.com/cart' } }),
    );
    expect(created.display.mode).toBe('url');
    const params = Object.fromEntries(new URL(created.display.content).searchParams);
    expect(params.method).toBe('alipay.trade.wap.pay');
    expect(JSON.parse(params.biz_content as string)).toMatchObject({
      product_code: 'QUICK_WAP_WAY',
      quit_url: 'https://shop.example.com/cart',
    });
    expect(() => verifyAlipayRequestSignature(params, app.publicKey)).not.toThrow();
    const noQuit = await client.createPayment(order('alipay_wap'));
    const noQuitParams = Object.fromEntries(new URL(noQuit.display.content).searchParams);
    expect(JSON.parse(noQuitParams.biz_content as string)).not.toHaveProperty('quit_url');
  });

  it('alipay_app: a signed order string (values encoded once) for app.pay with QUICK_MSECURITY_PAY', async () => {
    const { gateway, client } = setup();
    const created = await client.createPayment(order('alipay_app'));
    expect(gateway.seen).toHaveLength(0);
    expect(created.display.mode).toBe('app');
    expect(created.display.content).toContain('timestamp=2026-01-01%2008%3A00%3A00');
    const params = Object.fromEntries(new URLSearchParams(created.display.content));
    expect(params).toMatchObject({ ...COMMON, method: 'alipay.trade.app.pay', notify_url: NOTIFY_URL });
    expect(params).not.toHaveProperty('return_url');
    expect(JSON.parse(params.biz_content as string)).toMatchObject({
      product_code: 'QUICK_MSECURITY_PAY',
      total_amount: '12.34',
    });
    expect(() => verifyAlipayRequestSignature(params, app.publicKey)).not.toThrow();
    expect(sdkJudge.checkNotifySignV2({ ...params })).toBe(true);
  });

  it('alipay_bar: trade.pay with the auth code; 10000 → paid at once', async () => {
    const { gateway, client } = setup();
    const node = ok({
      trade_no: '2026010122001400000000000001',
      out_trade_no: 'A20260101000002',
      buyer_logon_id: '159****5620',
      total_amount: '12.34',
      receipt_amount: '12.34',
      gmt_payment: '2026-01-01 08:00:05',
      buyer_user_id: '2088102122524333',
    });
    gateway.reply({ node });
    const created = await client.createPayment(
      order('alipay_bar', { extras: { authCode: '28763443825664394' } }),
    );
    expect(gateway.last.params.method).toBe('alipay.trade.pay');
    expect(gateway.last.biz).toEqual({
      out_trade_no: 'A20260101000002',
      total_amount: '12.34',
      subject: '会员月卡',
      time_expire: '2026-01-01 08:30:00',
      scene: 'bar_code',
      auth_code: '28763443825664394',
      product_code: 'FACE_TO_FACE_PAYMENT',
    });
    expect(created).toEqual({
      display: { mode: 'none', content: '' },
      trade: {
        outTradeNo: 'A20260101000002',
        state: 'paid',
        amount: 1234,
        channelTradeNo: '2026010122001400000000000001',
        payerId: '2088102122524333',
        paidAt: new Date('2026-01-01T00:00:05.000Z'),
        providerState: 'TRADE_SUCCESS',
        raw: node,
      },
    });
  });

  it('alipay_bar: 10003 (the payer must confirm) → waiting, to be queried', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: { code: '10003', msg: ' order success pay inprocess', out_trade_no: 'A20260101000002' },
    });
    const created = await client.createPayment(
      order('alipay_bar', { extras: { authCode: '28763443825664394' } }),
    );
    expect(created.display).toEqual({ mode: 'none', content: '' });
    expect(created.trade).toMatchObject({ state: 'waiting', providerState: 'WAIT_BUYER_PAY', paidAt: null });
  });

  it('alipay_bar: 20000 (outcome unknown) → waiting, to be queried, never a failure', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: {
        code: '20000',
        msg: 'Service Currently Unavailable',
        sub_code: 'isp.unknow-error',
        sub_msg: '系统繁忙',
      },
    });
    const created = await client.createPayment(
      order('alipay_bar', { extras: { authCode: '28763443825664394' } }),
    );
    expect(created.trade).toMatchObject({ state: 'waiting', providerState: 'isp.unknow-error' });
  });

  it('alipay_bar: 40004 → rejected with sub_code and sub_msg', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: failed('ACQ.PAYMENT_AUTH_CODE_INVALID', '支付失败，获取顾客账户信息失败') });
    const error = await channelError(
      client.createPayment(order('alipay_bar', { extras: { authCode: '28763443825664394' } })),
    );
    expect(error).toMatchObject({
      provider: 'alipay',
      kind: 'rejected',
      providerCode: 'ACQ.PAYMENT_AUTH_CODE_INVALID',
      message: '支付失败，获取顾客账户信息失败',
    });
  });

  it('alipay_bar without channelExtras.authCode fails before any request', async () => {
    const { gateway, client } = setup();
    await expect(client.createPayment(order('alipay_bar'))).rejects.toThrow(/authCode/);
    expect(gateway.seen).toHaveLength(0);
  });

  it('cuts the subject to 256 characters without splitting a surrogate pair', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok({ qr_code: 'https://qr.alipay.com/x' }) });
    await client.createPayment(order('alipay_qr', { subject: `${'好'.repeat(255)}😀tail` }));
    expect(gateway.last.biz.subject).toBe(`${'好'.repeat(255)}😀`);
  });

  it('refuses a channel code of the other provider', async () => {
    const { client } = setup();
    await expect(client.createPayment(order('wx_native'))).rejects.toThrow(/not an Alipay channel/);
  });
});

describe('AlipayClient queries and closes', () => {
  const queried = (fields: Record<string, unknown>) =>
    ok({
      trade_no: '2026010122001400000000000002',
      out_trade_no: 'A20260101000002',
      buyer_logon_id: '159****5620',
      total_amount: '12.34',
      buyer_user_id: '2088102122524333',
      ...fields,
    });

  it('queries by out_trade_no and reads a paid trade', async () => {
    const { gateway, client } = setup();
    const node = queried({ trade_status: 'TRADE_SUCCESS', send_pay_date: '2026-01-01 08:03:00' });
    gateway.reply({ node });
    const trade = await client.queryPayment('A20260101000002');
    expect(gateway.last.params).toMatchObject({ ...COMMON, method: 'alipay.trade.query' });
    expect(gateway.last.params).not.toHaveProperty('notify_url');
    expect(gateway.last.biz).toEqual({ out_trade_no: 'A20260101000002' });
    expect(trade).toEqual({
      outTradeNo: 'A20260101000002',
      state: 'paid',
      amount: 1234,
      channelTradeNo: '2026010122001400000000000002',
      payerId: '2088102122524333',
      paidAt: new Date('2026-01-01T00:03:00.000Z'),
      providerState: 'TRADE_SUCCESS',
      raw: node,
    });
  });

  it.each([
    ['WAIT_BUYER_PAY', 'waiting'],
    ['TRADE_SUCCESS', 'paid'],
    ['TRADE_FINISHED', 'paid'],
    ['TRADE_CLOSED', 'closed'],
  ])('trade_status %s → %s', async (tradeStatus, state) => {
    const { gateway, client } = setup();
    gateway.reply({ node: queried({ trade_status: tradeStatus, send_pay_date: '2026-01-01 08:03:00' }) });
    const trade = await client.queryPayment('A20260101000002');
    expect(trade.state).toBe(state);
    expect(trade.providerState).toBe(tradeStatus);
    expect(trade.paidAt).toEqual(state === 'paid' ? new Date('2026-01-01T00:03:00.000Z') : null);
  });

  it('newer apps: the payer is buyer_open_id', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: queried({
        trade_status: 'TRADE_SUCCESS',
        buyer_user_id: undefined,
        buyer_open_id: '074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5',
      }),
    });
    expect((await client.queryPayment('A20260101000002')).payerId).toBe(
      '074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5',
    );
  });

  it('40004 ACQ.TRADE_NOT_EXIST → not_found', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: failed('ACQ.TRADE_NOT_EXIST', '交易不存在', { out_trade_no: 'A20260101000002' }) });
    expect(await client.queryPayment('A20260101000002')).toMatchObject({
      outTradeNo: 'A20260101000002',
      state: 'not_found',
      providerState: 'ACQ.TRADE_NOT_EXIST',
      amount: null,
    });
  });

  it('an unknown trade_status or a malformed amount is an invalid response', async () => {
    const { gateway, client } = setup();
    gateway.reply(
      { node: queried({ trade_status: 'TRADE_PENDING' }) },
      { node: queried({ trade_status: 'TRADE_SUCCESS', total_amount: '12.345' }) },
    );
    for (let i = 0; i < 2; i++) {
      expect(await channelError(client.queryPayment('A20260101000002'))).toMatchObject({
        kind: 'invalid_response',
        providerCode: 'MALFORMED_RESPONSE',
      });
    }
  });

  it('closes with trade.close; 10000 resolves', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: ok({ trade_no: '2026010122001400000000000002', out_trade_no: 'A20260101000002' }),
    });
    await expect(client.closePayment('A20260101000002')).resolves.toBeUndefined();
    expect(gateway.last.params.method).toBe('alipay.trade.close');
    expect(gateway.last.biz).toEqual({ out_trade_no: 'A20260101000002' });
  });

  it('closing a trade Alipay never created (the payer never opened the cashier) resolves', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: failed('ACQ.TRADE_NOT_EXIST', '交易不存在') });
    await expect(client.closePayment('A20260101000002')).resolves.toBeUndefined();
  });

  it('closing a paid trade (ACQ.TRADE_STATUS_ERROR) is a rejection', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: failed('ACQ.TRADE_STATUS_ERROR', '交易状态不合法') });
    expect(await channelError(client.closePayment('A20260101000002'))).toMatchObject({
      kind: 'rejected',
      providerCode: 'ACQ.TRADE_STATUS_ERROR',
      message: '交易状态不合法',
    });
  });

  it('an unsigned TRADE_NOT_EXIST proves nothing: close and query reject instead of concluding', async () => {
    const { gateway, client } = setup();
    const node = failed('ACQ.TRADE_NOT_EXIST', '交易不存在');
    gateway.reply({ node, signing: 'none' }, { node, signing: 'none' });
    expect(await channelError(client.closePayment('A1'))).toMatchObject({
      kind: 'rejected',
      providerCode: 'ACQ.TRADE_NOT_EXIST',
    });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({ kind: 'rejected' });
  });
});

describe('AlipayClient refunds', () => {
  const refundInput = {
    outTradeNo: 'A20260101000002',
    outRefundNo: 'R20260101000002',
    amount: 234,
    total: 1234,
    reason: '商品缺货',
    notifyUrl: 'https://pay.example.com/notify/refund/9',
  };

  it('refunds synchronously: fund_change Y → succeeded', async () => {
    const { gateway, client } = setup();
    const node = ok({
      trade_no: '2026010122001400000000000002',
      out_trade_no: 'A20260101000002',
      buyer_logon_id: '159****5620',
      fund_change: 'Y',
      refund_fee: '2.34',
      gmt_refund_pay: '2026-01-01 08:10:00',
    });
    gateway.reply({ node });
    const refund = await client.refund(refundInput);
    expect(gateway.last.params.method).toBe('alipay.trade.refund');
    // alipay.trade.refund has no notify_url of its own: refunds notify the payment's.
    expect(gateway.last.params).not.toHaveProperty('notify_url');
    expect(gateway.last.biz).toEqual({
      out_trade_no: 'A20260101000002',
      refund_amount: '2.34',
      out_request_no: 'R20260101000002',
      refund_reason: '商品缺货',
    });
    expect(refund).toEqual({
      outRefundNo: 'R20260101000002',
      state: 'succeeded',
      amount: 234,
      channelRefundNo: null,
      finishedAt: new Date('2026-01-01T00:10:00.000Z'),
      failureReason: null,
      providerState: 'REFUND_SUCCESS',
      raw: node,
    });
  });

  it('a refund answer with an unreadable gmt_refund_pay is an invalid response', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok({ fund_change: 'Y', gmt_refund_pay: '2026-01-01T08:10:00' }) });
    expect(await channelError(client.refund(refundInput))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'MALFORMED_RESPONSE',
    });
  });

  it('an unknown outcome (20000) or ACQ.SYSTEM_ERROR is not a refusal: the refund is asked about again', async () => {
    const { gateway, client } = setup();
    gateway.reply(
      {
        node: {
          code: '20000',
          msg: 'Service Currently Unavailable',
          sub_code: 'isp.unknow-error',
          sub_msg: '系统繁忙',
        },
      },
      { node: failed('ACQ.SYSTEM_ERROR', '系统错误') },
      { node: failed('ACQ.TRADE_HAS_FINISHED', '交易已完结') },
    );
    const unknown = await channelError(client.refund(refundInput));
    expect(unknown).toMatchObject({ kind: 'rejected', providerCode: 'isp.unknow-error', retryable: true });
    expect(isTransientChannelError(unknown)).toBe(true);
    const busy = await channelError(client.refund(refundInput));
    expect([busy.providerCode, isTransientChannelError(busy)]).toEqual(['ACQ.SYSTEM_ERROR', true]);
    // A real "no" stays a refusal.
    const no = await channelError(client.refund(refundInput));
    expect([no.providerCode, isTransientChannelError(no)]).toEqual(['ACQ.TRADE_HAS_FINISHED', false]);
  });

  it('leaves refund_reason out when there is none', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok({ fund_change: 'Y' }) });
    await client.refund({ ...refundInput, reason: null });
    expect(gateway.last.biz).not.toHaveProperty('refund_reason');
  });

  it('fund_change N (nothing moved by this call) → asks fastpay.refund.query and uses its answer', async () => {
    const { gateway, client } = setup();
    gateway.reply(
      { node: ok({ fund_change: 'N', refund_fee: '2.34' }) },
      {
        node: ok({
          out_trade_no: 'A20260101000002',
          out_request_no: 'R20260101000002',
          refund_amount: '2.34',
          total_amount: '12.34',
          refund_status: 'REFUND_SUCCESS',
          gmt_refund_pay: '2026-01-01 08:09:00',
        }),
      },
    );
    const refund = await client.refund(refundInput);
    expect(gateway.seen.map((s) => s.params.method)).toEqual([
      'alipay.trade.refund',
      'alipay.trade.fastpay.refund.query',
    ]);
    expect(refund).toMatchObject({
      state: 'succeeded',
      amount: 234,
      finishedAt: new Date('2026-01-01T00:09:00.000Z'),
      providerState: 'REFUND_SUCCESS',
    });
  });

  it('a refused refund keeps sub_code and sub_msg', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: failed('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足') });
    expect(await channelError(client.refund(refundInput))).toMatchObject({
      kind: 'rejected',
      providerCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH',
      message: '卖家余额不足',
    });
  });

  it('queries a refund with out_trade_no, out_request_no and query_options', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: ok({
        out_trade_no: 'A20260101000002',
        out_request_no: 'R20260101000002',
        refund_amount: '2.34',
        total_amount: '12.34',
        refund_status: 'REFUND_SUCCESS',
        gmt_refund_pay: '2026-01-01 08:09:00',
      }),
    });
    const refund = await client.queryRefund('R20260101000002', 'A20260101000002');
    expect(gateway.last.params.method).toBe('alipay.trade.fastpay.refund.query');
    expect(gateway.last.biz).toEqual({
      out_trade_no: 'A20260101000002',
      out_request_no: 'R20260101000002',
      query_options: ['gmt_refund_pay'],
    });
    expect(refund).toMatchObject({ outRefundNo: 'R20260101000002', state: 'succeeded', amount: 234 });
  });

  it('10000 without refund fields (a refund Alipay does not know) → not_found', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok() });
    expect(await client.queryRefund('R1', 'A1')).toMatchObject({
      outRefundNo: 'R1',
      state: 'not_found',
      amount: null,
    });
  });
});

describe('AlipayClient errors', () => {
  it('an unsigned error_response is a rejection with its sub_code', async () => {
    const { gateway, client } = setup();
    gateway.reply({
      node: {
        code: '40002',
        msg: 'Invalid Arguments',
        sub_code: 'isv.invalid-app-id',
        sub_msg: '无效的AppID参数',
      },
      errorResponse: true,
      signing: 'none',
    });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      provider: 'alipay',
      kind: 'rejected',
      providerCode: 'isv.invalid-app-id',
      message: '无效的AppID参数',
    });
  });

  it('a signed error_response, and a failure without sub_code (code and msg kept)', async () => {
    const { gateway, client } = setup();
    gateway.reply(
      {
        node: { code: '40001', msg: 'Missing Required Arguments', sub_code: 'isv.missing-method' },
        errorResponse: true,
      },
      { node: { code: '40006', msg: 'Insufficient Permissions' } },
    );
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'rejected',
      providerCode: 'isv.missing-method',
      message: 'Missing Required Arguments',
    });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'rejected',
      providerCode: '40006',
      message: 'Insufficient Permissions',
    });
  });

  it.each([
    ['unsigned', 'none'],
    ['signed by another key', 'stranger'],
    ['tampered after signing', 'tampered'],
  ] as const)('a success answer %s is an invalid response', async (_what, signing) => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok({ trade_status: 'TRADE_SUCCESS', total_amount: '12.34' }), signing });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'INVALID_SIGNATURE',
    });
  });

  it('an answer that is not JSON, or lacks the method node, is an invalid response', async () => {
    const { gateway, client } = setup();
    gateway.reply({ raw: '<html>busy</html>' }, { raw: '{"other_response":{"code":"10000"},"sign":"x"}' });
    for (let i = 0; i < 2; i++) {
      expect(await channelError(client.queryPayment('A1'))).toMatchObject({ kind: 'invalid_response' });
    }
  });

  it('a success without the promised field is an invalid response', async () => {
    const { gateway, client } = setup();
    gateway.reply({ node: ok({ out_trade_no: 'A20260101000002' }) });
    expect(await channelError(client.createPayment(order('alipay_qr')))).toMatchObject({
      kind: 'invalid_response',
      providerCode: 'MALFORMED_RESPONSE',
    });
  });

  it('a non-2xx HTTP status is no answer: unreachable HTTP_<status>', async () => {
    const { gateway, client } = setup();
    gateway.reply({ raw: 'Bad Gateway', status: 502 });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'unreachable',
      providerCode: 'HTTP_502',
      httpStatus: 502,
    });
  });

  it('a transport failure is unreachable: NETWORK_ERROR, or TIMEOUT for a timeout', async () => {
    const { gateway, client } = setup();
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    gateway.reply(refused, new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    const first = await channelError(
      client.refund({
        outTradeNo: 'A1',
        outRefundNo: 'R1',
        amount: 1,
        total: 1,
        reason: null,
        notifyUrl: NOTIFY_URL,
      }),
    );
    expect(first).toMatchObject({ kind: 'unreachable', providerCode: 'NETWORK_ERROR' });
    expect(first.cause).toBe(refused);
    expect(await channelError(client.closePayment('A1'))).toMatchObject({
      kind: 'unreachable',
      providerCode: 'TIMEOUT',
    });
  });

  it('the gateway refusing our signature is reported as Alipay said it', async () => {
    const clock = new ManualClock(START);
    const gateway = new FakeAlipay();
    const wrongKey = { ...config, privateKey: stranger.privatePem };
    const client = new AlipayClient(wrongKey, { transport: gateway.transport, clock });
    expect(await channelError(client.queryPayment('A1'))).toMatchObject({
      kind: 'rejected',
      providerCode: 'isv.invalid-signature',
    });
  });
});

describe('AlipayClient notifies', () => {
  const paidNotify = (
    patch: Record<string, string | undefined> = {},
  ): Record<string, string | undefined> => ({
    notify_time: '2026-01-01 08:00:06',
    notify_type: 'trade_status_sync',
    notify_id: 'ac05099524730693a8b330c5ecf72da9786',
    app_id: ALI.appId,
    charset: 'utf-8',
    version: '1.0',
    trade_no: '2026010122001400000000000002',
    out_trade_no: 'A20260101000002',
    trade_status: 'TRADE_SUCCESS',
    buyer_id: '2088102122524333',
    seller_id: ALI.sellerId,
    total_amount: '12.34',
    receipt_amount: '12.34',
    subject: '会员月卡',
    gmt_create: '2026-01-01 08:00:01',
    gmt_payment: '2026-01-01 08:00:05',
    passback_params: 'order%3D1%26x%3D%25',
    ...patch,
  });

  const post = (fields: Record<string, string | undefined>, key = alipay.privateKey) => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    rawBody: new URLSearchParams(signAlipayNotify(fields, key)).toString(),
    contentType: 'application/x-www-form-urlencoded; charset=utf-8',
  });

  it('a signed payment notify → the paid trade (values with % decoded once)', () => {
    const { client } = setup();
    const verified = client.verifyCallback(post(paidNotify()));
    expect(verified.kind).toBe('payment');
    if (verified.kind !== 'payment') return;
    expect(verified.trade).toMatchObject({
      outTradeNo: 'A20260101000002',
      state: 'paid',
      amount: 1234,
      channelTradeNo: '2026010122001400000000000002',
      payerId: '2088102122524333',
      paidAt: new Date('2026-01-01T00:00:05.000Z'),
      providerState: 'TRADE_SUCCESS',
    });
    expect(verified.trade.raw).toMatchObject({ passback_params: 'order%3D1%26x%3D%25' });
  });

  it('accepts a notify signed by an independent implementation (the research’s own signer)', () => {
    const { client } = setup();
    const fields = paidNotify() as Record<string, string>;
    const rawBody = referenceNotifyBody(fields, alipay.privateKey);
    expect(client.verifyCallback({ headers: {}, rawBody, contentType: undefined }).kind).toBe('payment');
  });

  it.each([
    ['TRADE_SUCCESS', 'paid'],
    ['TRADE_FINISHED', 'paid'],
    ['TRADE_CLOSED', 'closed'],
    ['WAIT_BUYER_PAY', 'waiting'],
  ])('trade_status %s → %s', (tradeStatus, state) => {
    const { client } = setup();
    const paid = state === 'paid';
    const verified = client.verifyCallback(
      post(paidNotify({ trade_status: tradeStatus, ...(paid ? {} : { gmt_payment: undefined }) })),
    );
    expect(verified).toMatchObject({ kind: 'payment', trade: { state, providerState: tradeStatus } });
  });

  it('a refund notify (refund_fee, out_biz_no) → the refund, amount left unknown (refund_fee is cumulative)', () => {
    const { client } = setup();
    const verified = client.verifyCallback(
      post(
        paidNotify({
          refund_fee: '2.34',
          out_biz_no: 'R20260101000002',
          gmt_refund: '2026-01-01 08:10:00.123',
        }),
      ),
    );
    expect(verified).toMatchObject({
      kind: 'refund',
      outTradeNo: 'A20260101000002',
      refund: {
        outRefundNo: 'R20260101000002',
        state: 'succeeded',
        amount: null,
        finishedAt: new Date('2026-01-01T00:10:00.123Z'),
        failureReason: null,
        providerState: 'TRADE_SUCCESS',
      },
    });
  });

  it.each<[string, () => CallbackRequest, string]>([
    [
      'a tampered amount',
      () => {
        const request = post(paidNotify());
        return { ...request, rawBody: request.rawBody.replace('total_amount=12.34', 'total_amount=0.01') };
      },
      'bad_signature',
    ],
    ['a signature by another key', () => post(paidNotify(), stranger.privateKey), 'bad_signature'],
    [
      'another application’s notify',
      () => post(paidNotify({ app_id: '2021000000000999' })),
      'merchant_mismatch',
    ],
    ['an empty body', () => ({ headers: {}, rawBody: '', contentType: undefined }), 'malformed_body'],
    [
      'a JSON body',
      () => ({ headers: {}, rawBody: '{"trade_status":"TRADE_SUCCESS"}', contentType: 'application/json' }),
      'missing_sign',
    ],
    [
      'a field given twice',
      () => {
        const request = post(paidNotify());
        return { ...request, rawBody: `${request.rawBody}&total_amount=0.01` };
      },
      'malformed_notify',
    ],
    [
      'sign_type RSA (SHA-1)',
      () => {
        const request = post(paidNotify());
        return { ...request, rawBody: request.rawBody.replace('sign_type=RSA2', 'sign_type=RSA') };
      },
      'unsupported_sign_type',
    ],
    ['an amount that is not yuan', () => post(paidNotify({ total_amount: '12.345' })), 'invalid_amount'],
    [
      'a payment time that is no date',
      () => post(paidNotify({ gmt_payment: '2026-02-30 08:00:05' })),
      'invalid_time',
    ],
    [
      'a refund time that is no date',
      () => post(paidNotify({ refund_fee: '2.34', out_biz_no: 'R20260101000002', gmt_refund: 'yesterday' })),
      'invalid_time',
    ],
    ['an unknown trade_status', () => post(paidNotify({ trade_status: 'TRADE_MAYBE' })), 'unknown_state'],
    ['no out_trade_no', () => post(paidNotify({ out_trade_no: undefined })), 'malformed_notify'],
    ['a refund without out_biz_no', () => post(paidNotify({ refund_fee: '1.00' })), 'malformed_notify'],
  ])('refuses %s', (_what, request, reason) => {
    const { client } = setup();
    expect(rejection(() => client.verifyCallback(request())).reason).toBe(reason);
  });

  it('answers exactly success, or failure so that Alipay retries', () => {
    const { client } = setup();
    expect(client.callbackAnswer(true)).toEqual({ status: 200, contentType: 'text/plain', body: 'success' });
    expect(client.callbackAnswer(false)).toEqual({ status: 200, contentType: 'text/plain', body: 'failure' });
  });
});

describe('createChannelClient', () => {
  it('builds the client of the credentials’ provider', () => {
    const clock = new ManualClock(START);
    const client: ChannelClient = createChannelClient(
      { provider: 'alipay', config },
      { transport: new FakeAlipay().transport, clock },
    );
    expect(client).toBeInstanceOf(AlipayClient);
    expect(client.provider).toBe('alipay');
  });
});
