import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipaySdk } from 'alipay-sdk';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AlipaySimulator, createAlipaySimulator } from '../src/alipay/simulator.js';
import { Sandbox } from '../src/sandbox.js';

/**
 * The Alipay simulator driven by the official alipay-sdk as the independent client: its requests must
 * pass our verifier, our responses and notifies must pass its verifier.
 */

// ------------------------------------------------------------------------------------------ helpers

/** The sandbox clock runs `clockOffsetMs` ahead of the real one, so tests can let trades expire. */
let clockOffsetMs = 0;
const sandboxNow = () => new Date(Date.now() + clockOffsetMs);

/** `yyyy-MM-dd HH:mm:ss`, Beijing time. alipay-sdk would send host-local time (research §C.1, pitfall 4). */
function beijing(date: Date = sandboxNow()): string {
  const shifted = new Date(date.getTime() + 8 * 3600_000).toISOString();
  return `${shifted.slice(0, 10)} ${shifted.slice(11, 19)}`;
}

interface AlipayConfig {
  appId: string;
  privateKey: string;
  alipayPublicKey: string;
  gateway: string;
  signType: string;
}

interface Started {
  app: FastifyInstance;
  sandbox: Sandbox;
  base: string;
  config: AlipayConfig;
  sdk: AlipaySdk;
}

async function startSandbox(timeScale: number): Promise<Started> {
  const sandbox = new Sandbox({ timeScale, now: sandboxNow }, [createAlipaySimulator]);
  const app = Fastify();
  await app.register(sandbox.plugin, { prefix: '/__sandbox' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  // The sandbox learns its base URL from the first request.
  const response = await fetch(`${base}/__sandbox/control/merchants`, { method: 'POST' });
  const { alipay: config } = (await response.json()) as { alipay: AlipayConfig };
  return { app, sandbox, base, config, sdk: sdkFor(config) };
}

function sdkFor(config: AlipayConfig, privateKey = config.privateKey, appId = config.appId): AlipaySdk {
  return new AlipaySdk({
    appId,
    privateKey,
    alipayPublicKey: config.alipayPublicKey,
    gateway: config.gateway,
    camelcase: false,
    keyType: 'PKCS8',
    timeout: 5000,
  });
}

/** A merchant's notify endpoint: records every POST and answers from `answers` (then `success`). */
class Receiver {
  readonly received: Record<string, string>[] = [];
  readonly answers: string[] = [];
  readonly #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.contentTypes.push(String(req.headers['content-type']));
      this.received.push(Object.fromEntries(new URLSearchParams(body)));
      res.writeHead(200, { 'content-type': 'text/plain' }).end(this.answers.shift() ?? 'success');
    });
  });
  readonly contentTypes: string[] = [];
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/notify/alipay`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  for(outTradeNo: string): Record<string, string>[] {
    return this.received.filter((n) => n.out_trade_no === outTradeNo);
  }

  async waitFor(outTradeNo: string, count: number): Promise<Record<string, string>[]> {
    const deadline = Date.now() + 10_000;
    while (this.for(outTradeNo).length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} notifies for ${outTradeNo}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.for(outTradeNo);
  }
}

let seq = 0;
const outTradeNo = (prefix: string) => `${prefix}${Date.now()}${String(++seq).padStart(3, '0')}`;

// ---------------------------------------------------------------------------------------- fixture

let s: Started;
const receiver = new Receiver();

beforeAll(async () => {
  await receiver.start();
  s = await startSandbox(0.001);
});

afterAll(async () => {
  await s?.app.close();
  await receiver.close();
});

function exec(method: string, bizContent: Record<string, unknown>, extra: Record<string, string> = {}) {
  return s.sdk.exec(method, { bizContent, timestamp: beijing(), ...extra }, { validateSign: true });
}

/** POSTs an SDK-signed parameter set as a form and returns the raw response text. */
async function raw(form: string): Promise<string> {
  const response = await fetch(s.config.gateway, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' },
    body: form,
  });
  expect(response.status).toBe(200);
  return response.text();
}

function signedForm(
  method: string,
  bizContent: Record<string, unknown>,
  extra: Record<string, string> = {},
): string {
  return s.sdk.sdkExecute(method, { bizContent, timestamp: beijing(), ...extra });
}

async function control(
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${s.base}/__sandbox/control/payments/${path}`, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

function expectVerifiedNotify(notify: Record<string, string>): void {
  for (const [key, value] of Object.entries(notify)) expect(value, `empty ${key}`).not.toBe('');
  expect(s.sdk.checkNotifySignV2({ ...notify })).toBe(true);
  expect(s.sdk.checkNotifySignV2({ ...notify, total_amount: '99999.99' })).toBe(false);
}

// ------------------------------------------------------------------------------------------- tests

describe('Alipay sandbox: merchants', () => {
  it('creates credentials shaped as paycenter’s Alipay channel config', () => {
    const { config } = s;
    expect(Object.keys(config).sort()).toEqual([
      'alipayPublicKey',
      'appId',
      'gateway',
      'privateKey',
      'signType',
    ]);
    expect(config.appId).toMatch(/^2021\d{12}$/);
    expect(config.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(config.alipayPublicKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(config.gateway).toBe(`${s.base}/__sandbox/alipay/gateway.do`);
    expect(config.signType).toBe('RSA2');
    const simulator = s.sandbox.simulators.get('alipay') as AlipaySimulator;
    const record = simulator.exportMerchant(config.appId);
    expect(record?.sellerId).toMatch(/^2088\d{12}$/);
  });
});

describe('Alipay sandbox: precreate, pay, notify, query', () => {
  it('runs the face-to-face QR flow end to end with alipay-sdk', async () => {
    const no = outTradeNo('QR');
    const biz = { out_trade_no: no, total_amount: '88.88', subject: '测试商品 QR' };
    const created = await exec('alipay.trade.precreate', biz, { notify_url: receiver.url });
    expect(created).toMatchObject({ code: '10000', msg: 'Success', out_trade_no: no });
    expect(created.qr_code).toMatch(/^https:\/\/qr\.alipay\.com\/bax/);

    // The same order again is re-entrant; a changed amount is not.
    expect((await exec('alipay.trade.precreate', biz, { notify_url: receiver.url })).qr_code).toBe(
      created.qr_code,
    );
    expect(await exec('alipay.trade.precreate', { ...biz, total_amount: '88.89' })).toMatchObject({
      code: '40004',
      sub_code: 'ACQ.CONTEXT_INCONSISTENT',
      out_trade_no: no,
    });

    const waiting = await exec('alipay.trade.query', { out_trade_no: no });
    expect(waiting).toMatchObject({ code: '10000', trade_status: 'WAIT_BUYER_PAY', total_amount: '88.88' });
    expect(waiting.trade_no).toMatch(/^\d{28}$/);
    expect(waiting.buyer_user_id).toBeUndefined();
    expect(waiting.send_pay_date).toBeUndefined();

    const paid = await control(`${no}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.json).toMatchObject({ provider: 'alipay', status: 'paid', amount: 8888, paidAmount: 8888 });

    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
    expect(receiver.contentTypes.at(-1)).toBe('application/x-www-form-urlencoded; charset=utf-8');
    expect(notify).toMatchObject({
      notify_type: 'trade_status_sync',
      app_id: s.config.appId,
      auth_app_id: s.config.appId,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
      trade_no: waiting.trade_no,
      out_trade_no: no,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '88.88',
      receipt_amount: '88.88',
      buyer_pay_amount: '88.88',
      subject: '测试商品 QR',
    });
    expect(notify!.notify_time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(notify!.gmt_payment).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(notify!.buyer_id).toMatch(/^2088\d{12}$/);
    expect(notify!.seller_id).toBe(
      (s.sandbox.simulators.get('alipay') as AlipaySimulator).exportMerchant(s.config.appId)?.sellerId,
    );

    const success = await exec('alipay.trade.query', { trade_no: waiting.trade_no });
    expect(success).toMatchObject({
      code: '10000',
      out_trade_no: no,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '88.88',
      buyer_pay_amount: '88.88',
      buyer_user_id: notify!.buyer_id,
      send_pay_date: notify!.gmt_payment,
    });
    expect(await exec('alipay.trade.precreate', biz)).toMatchObject({ sub_code: 'ACQ.TRADE_HAS_SUCCESS' });
    await s.sandbox.callbacks.idle();
    const deliveries = s.sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ provider: 'alipay', kind: 'payment', acknowledged: true });
  });

  it('emits responses as raw text with escaped slashes, signed over exactly that text', async () => {
    const no = outTradeNo('RAW');
    const text = await raw(
      signedForm('alipay.trade.precreate', { out_trade_no: no, total_amount: '1', subject: 's' }),
    );
    expect(text).toMatch(
      /^\{"alipay_trade_precreate_response":\{"code":"10000",.*\},"sign":"[A-Za-z0-9+/=]{344}"\}$/,
    );
    expect(text).toContain('"qr_code":"https:\\/\\/qr.alipay.com\\/bax');
    const { sign } = JSON.parse(text) as { sign: string };
    expect(() => s.sdk.checkResponseSign(text, 'alipay_trade_precreate_response', sign, 't')).not.toThrow();
    const unescaped = text.replaceAll('\\/', '/');
    expect(() => s.sdk.checkResponseSign(unescaped, 'alipay_trade_precreate_response', sign, 't')).toThrow();
  });

  it('reports the amount a test says was paid, so paycenter can be shown a mismatch', async () => {
    const no = outTradeNo('MIS');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '10.00', subject: 's' },
      { notify_url: receiver.url },
    );
    expect((await control(`${no}/pay`, { amount: 1 })).json).toMatchObject({ amount: 1000, paidAmount: 1 });
    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
    expect(notify).toMatchObject({
      total_amount: '0.01',
      buyer_pay_amount: '0.01',
      trade_status: 'TRADE_SUCCESS',
    });
  });

  it('sends no notify when the trade has no notify_url', async () => {
    const no = outTradeNo('NON');
    await exec('alipay.trade.precreate', { out_trade_no: no, total_amount: '1.00', subject: 's' });
    await control(`${no}/pay`);
    expect(s.sandbox.callbacks.callbacks.filter((c) => c.outTradeNo === no)).toHaveLength(0);
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
    });
  });
});

describe('Alipay sandbox: close and expiry', () => {
  it('closes an unpaid trade with a TRADE_CLOSED notify; paid and unknown trades refuse', async () => {
    const no = outTradeNo('CL');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '5.00', subject: 's' },
      { notify_url: receiver.url },
    );
    const closed = await exec('alipay.trade.close', { out_trade_no: no });
    expect(closed).toMatchObject({ code: '10000', out_trade_no: no });
    expect(closed.trade_no).toMatch(/^\d{28}$/);
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_CLOSED',
    });
    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
    expect(notify).toMatchObject({ trade_status: 'TRADE_CLOSED', total_amount: '5.00' });
    expect(notify!.gmt_close).toMatch(/^\d{4}-/);
    expect(notify!.gmt_payment).toBeUndefined();
    expect(notify!.buyer_id).toBeUndefined(); // nobody scanned the QR code

    expect(await exec('alipay.trade.close', { out_trade_no: no })).toMatchObject({ code: '10000' });
    expect(
      await exec('alipay.trade.precreate', { out_trade_no: no, total_amount: '5.00', subject: 's' }),
    ).toMatchObject({
      sub_code: 'ACQ.TRADE_HAS_CLOSE',
    });
    expect((await control(`${no}/pay`)).status).toBe(409);

    const paidNo = outTradeNo('CLP');
    await exec('alipay.trade.precreate', { out_trade_no: paidNo, total_amount: '5.00', subject: 's' });
    await control(`${paidNo}/pay`);
    expect(await exec('alipay.trade.close', { out_trade_no: paidNo })).toMatchObject({
      code: '40004',
      msg: 'Business Failed',
      sub_code: 'ACQ.TRADE_STATUS_ERROR',
      out_trade_no: paidNo,
    });
    expect(await exec('alipay.trade.close', { out_trade_no: 'NOPE1' })).toMatchObject({
      code: '40004',
      sub_code: 'ACQ.TRADE_NOT_EXIST',
      out_trade_no: 'NOPE1',
    });
    expect(await exec('alipay.trade.query', { out_trade_no: 'NOPE1' })).toMatchObject({
      code: '40004',
      sub_code: 'ACQ.TRADE_NOT_EXIST',
    });
  });

  it('closes a trade through the control API with a TRADE_CLOSED notify', async () => {
    const no = outTradeNo('CC');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '5.00', subject: 's' },
      { notify_url: receiver.url },
    );
    expect((await control(`${no}/close`)).json).toMatchObject({ status: 'closed' });
    const [notify] = await receiver.waitFor(no, 1);
    expect(notify).toMatchObject({ trade_status: 'TRADE_CLOSED' });
  });

  it('closes a trade past timeout_express when it is next looked at', async () => {
    const no = outTradeNo('EXP');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '5.00', subject: 's', timeout_express: '1m' },
      { notify_url: receiver.url },
    );
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'WAIT_BUYER_PAY',
    });
    clockOffsetMs = 2 * 60_000;
    try {
      expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
        trade_status: 'TRADE_CLOSED',
      });
      const [notify] = await receiver.waitFor(no, 1);
      expect(notify).toMatchObject({ trade_status: 'TRADE_CLOSED' });
      expect(
        await exec('alipay.trade.precreate', {
          out_trade_no: outTradeNo('EXP'),
          total_amount: '1',
          subject: 's',
          time_expire: beijing(new Date(Date.now())),
        }),
      ).toMatchObject({ sub_code: 'ACQ.INVALID_PARAMETER' });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('takes time_expire as Beijing time', async () => {
    const no = outTradeNo('TE');
    const at = new Date(Date.now() + 90_000);
    await exec('alipay.trade.precreate', {
      out_trade_no: no,
      total_amount: '5.00',
      subject: 's',
      time_expire: beijing(at),
    });
    expect(s.sandbox.ledger.find(no)?.expireAt?.getTime()).toBe(Math.floor(at.getTime() / 1000) * 1000);
  });
});

describe('Alipay sandbox: refunds', () => {
  it('refunds partially twice then in full, idempotent per out_request_no, with notifies', async () => {
    const no = outTradeNo('RF');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '100.00', subject: 's' },
      { notify_url: receiver.url },
    );
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '1.00', out_request_no: 'R0' }),
    ).toMatchObject({
      code: '40004',
      sub_code: 'ACQ.TRADE_STATUS_ERROR',
    });
    await control(`${no}/pay`);
    await receiver.waitFor(no, 1);

    const first = await exec('alipay.trade.refund', {
      out_trade_no: no,
      refund_amount: '30.00',
      out_request_no: 'R1',
      refund_reason: '退货',
    });
    expect(first).toMatchObject({ code: '10000', out_trade_no: no, fund_change: 'Y', refund_fee: '30.00' });
    expect(first.gmt_refund_pay).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const repeat = await exec('alipay.trade.refund', {
      out_trade_no: no,
      refund_amount: '30.00',
      out_request_no: 'R1',
    });
    expect(repeat).toMatchObject({
      code: '10000',
      fund_change: 'N',
      refund_fee: '30.00',
      gmt_refund_pay: first.gmt_refund_pay,
    });
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '20.00', out_request_no: 'R2' }),
    ).toMatchObject({
      fund_change: 'Y',
      refund_fee: '50.00',
    });
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '50.01', out_request_no: 'R3' }),
    ).toMatchObject({
      code: '40004',
      sub_code: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
      out_trade_no: no,
    });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
    });
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '50.00', out_request_no: 'R3' }),
    ).toMatchObject({
      fund_change: 'Y',
      refund_fee: '100.00',
    });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_CLOSED',
    });
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '0.01', out_request_no: 'R4' }),
    ).toMatchObject({
      code: '40004',
    });
    expect(
      await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: '30.00', out_request_no: 'R1' }),
    ).toMatchObject({
      fund_change: 'N',
      refund_fee: '100.00',
    });

    expect(
      await exec('alipay.trade.fastpay.refund.query', {
        out_trade_no: no,
        out_request_no: 'R1',
        query_options: ['gmt_refund_pay'],
      }),
    ).toMatchObject({
      code: '10000',
      out_request_no: 'R1',
      refund_amount: '30.00',
      total_amount: '100.00',
      refund_status: 'REFUND_SUCCESS',
      gmt_refund_pay: first.gmt_refund_pay,
    });
    const unknown = await exec('alipay.trade.fastpay.refund.query', {
      out_trade_no: no,
      out_request_no: 'R9',
    });
    expect(unknown.code).toBe('10000');
    expect(unknown.refund_status).toBeUndefined();
    expect(unknown.refund_amount).toBeUndefined();

    const notifies = (await receiver.waitFor(no, 4)).slice(1);
    for (const notify of notifies) expectVerifiedNotify(notify);
    expect(notifies.map((n) => [n.trade_status, n.out_biz_no, n.refund_fee])).toEqual([
      ['TRADE_SUCCESS', 'R1', '30.00'],
      ['TRADE_SUCCESS', 'R2', '50.00'],
      ['TRADE_CLOSED', 'R3', '100.00'],
    ]);
    expect(notifies[0]!.gmt_refund).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    expect(notifies[0]!.gmt_close).toBeUndefined();
    expect(notifies[2]!.gmt_close).toMatch(/^\d{4}-/);
    await s.sandbox.callbacks.idle();
    expect(s.sandbox.callbacks.callbacks.filter((c) => c.outTradeNo === no).map((c) => c.kind)).toEqual([
      'payment',
      'refund',
      'refund',
      'refund',
    ]);

    const payment = s.sandbox.ledger.find(no)!;
    expect(payment.refunds.map((r) => [r.outRefundNo, r.amount, r.status, r.reason])).toEqual([
      ['R1', 3000, 'succeeded', '退货'],
      ['R2', 2000, 'succeeded', null],
      ['R3', 5000, 'succeeded', null],
    ]);
  });

  it('refuses malformed refund amounts', async () => {
    const no = outTradeNo('RFA');
    await exec('alipay.trade.precreate', { out_trade_no: no, total_amount: '1.00', subject: 's' });
    await control(`${no}/pay`);
    for (const amount of ['0.001', '-1', '1e2', ' 1', '0', '0.00', '.5']) {
      expect(
        await exec('alipay.trade.refund', { out_trade_no: no, refund_amount: amount, out_request_no: 'X' }),
      ).toMatchObject({
        code: '40004',
        sub_code: 'ACQ.INVALID_PARAMETER',
      });
    }
    expect(s.sandbox.ledger.find(no)?.refunds).toEqual([]);
  });
});

describe('Alipay sandbox: bar code (alipay.trade.pay)', () => {
  it('pays at once by default', async () => {
    const no = outTradeNo('BAR');
    const result = await exec(
      'alipay.trade.pay',
      {
        out_trade_no: no,
        scene: 'bar_code',
        auth_code: '281234567890123456',
        total_amount: '0.29',
        subject: 's',
      },
      { notify_url: receiver.url },
    );
    expect(result).toMatchObject({
      code: '10000',
      out_trade_no: no,
      total_amount: '0.29',
      receipt_amount: '0.29',
      buyer_pay_amount: '0.29',
    });
    expect(result.trade_no).toMatch(/^\d{28}$/);
    expect(result.buyer_logon_id).toBeTruthy();
    expect(result.buyer_user_id).toMatch(/^2088\d{12}$/);
    expect(result.gmt_payment).toMatch(/^\d{4}-/);
    expect(s.sandbox.ledger.find(no)).toMatchObject({
      product: 'bar',
      amount: 29,
      paidAmount: 29,
      status: 'paid',
    });
    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
  });

  it('answers 10003 for an auth code ending in 0003, then waits for the buyer', async () => {
    const no = outTradeNo('BARW');
    const result = await exec('alipay.trade.pay', {
      out_trade_no: no,
      scene: 'bar_code',
      auth_code: '281234567890120003',
      total_amount: '12.00',
      subject: 's',
    });
    expect(result).toMatchObject({ code: '10003', out_trade_no: no, total_amount: '12.00' });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'WAIT_BUYER_PAY',
    });
    await control(`${no}/pay`);
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
      buyer_pay_amount: '12.00',
    });
  });

  it('cancels a waiting code payment by closing it', async () => {
    const no = outTradeNo('BARC');
    await exec('alipay.trade.pay', {
      out_trade_no: no,
      scene: 'bar_code',
      auth_code: '301234567890120003',
      total_amount: '1.00',
      subject: 's',
    });
    expect(await exec('alipay.trade.cancel', { out_trade_no: no })).toMatchObject({
      code: '10000',
      retry_flag: 'N',
      action: 'close',
    });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_CLOSED',
    });
  });

  it('refuses an auth code ending in 0004, and malformed ones, without creating a trade', async () => {
    for (const authCode of ['281234567890120004', '123', '2812345678', '181234567890123456']) {
      const no = outTradeNo('BARX');
      const result = await exec('alipay.trade.pay', {
        out_trade_no: no,
        scene: 'bar_code',
        auth_code: authCode,
        total_amount: '1.00',
        subject: 's',
      });
      expect(result).toMatchObject({
        code: '40004',
        sub_code: 'ACQ.PAYMENT_AUTH_CODE_INVALID',
        out_trade_no: no,
      });
      expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
        sub_code: 'ACQ.TRADE_NOT_EXIST',
      });
    }
  });
});

describe('Alipay sandbox: page, wap and app pay', () => {
  it('page pay: the GET URL opens the cashier, Pay notifies and returns to return_url with signed parameters', async () => {
    const no = outTradeNo('PC');
    const returnUrl = 'https://shop.example.com/return?from=alipay';
    const url = s.sdk.pageExecute('alipay.trade.page.pay', 'GET', {
      bizContent: {
        out_trade_no: no,
        total_amount: '66.60',
        subject: '页面支付',
        product_code: 'FAST_INSTANT_TRADE_PAY',
      },
      returnUrl,
      notifyUrl: receiver.url,
      timestamp: beijing(),
    });
    expect(url).toContain('alipay_sdk=');
    // The trade does not exist until the buyer opens the cashier.
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      sub_code: 'ACQ.TRADE_NOT_EXIST',
    });
    expect(await exec('alipay.trade.close', { out_trade_no: no })).toMatchObject({
      sub_code: 'ACQ.TRADE_NOT_EXIST',
    });

    const cashier = await fetch(url);
    expect(cashier.status).toBe(200);
    const html = await cashier.text();
    expect(html).toContain(no);
    expect(html).toContain('66.60');
    const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1]?.replaceAll('&#38;', '&');
    expect(action).toMatch(/\/__sandbox\/alipay\/cashier\/\d{28}\/pay$/);
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'WAIT_BUYER_PAY',
    });
    expect(s.sandbox.ledger.find(no)).toMatchObject({ product: 'page', amount: 6660 });
    // Opening the same URL again shows the same trade.
    expect(await (await fetch(url)).text()).toContain(action!);

    const paid = await fetch(action!, { method: 'POST', redirect: 'manual' });
    expect(paid.status).toBe(302);
    const location = new URL(paid.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe('https://shop.example.com/return');
    const back = Object.fromEntries(location.searchParams);
    expect(back).toMatchObject({
      from: 'alipay',
      method: 'alipay.trade.page.pay.return',
      out_trade_no: no,
      total_amount: '66.60',
      app_id: s.config.appId,
      auth_app_id: s.config.appId,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
    });
    const { from: _merchantOwn, ...signed } = back;
    expect(s.sdk.checkNotifySignV2({ ...signed })).toBe(true);
    expect(s.sdk.checkNotifySignV2({ ...signed, total_amount: '0.01' })).toBe(false);

    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
    expect(notify).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
      total_amount: '66.60',
      trade_no: back.trade_no,
    });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
    });
    expect((await fetch(action!, { method: 'POST', redirect: 'manual' })).status).toBe(409);
  });

  it('wap pay: the auto-submitting POST form opens the cashier', async () => {
    const no = outTradeNo('WAP');
    const form = s.sdk.pageExecute('alipay.trade.wap.pay', 'POST', {
      bizContent: {
        out_trade_no: no,
        total_amount: '9.90',
        subject: 'wap "quoted" & more',
        product_code: 'QUICK_WAP_WAY',
        quit_url: 'https://shop.example.com/quit',
      },
      notifyUrl: receiver.url,
      timestamp: beijing(),
    });
    const action = /<form action="([^"]+)" method="post"/.exec(form)?.[1];
    const fields = new URLSearchParams();
    for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)" \/>/g)) {
      fields.append(m[1]!, m[2]!.replaceAll('&quot;', '"'));
    }
    expect(fields.has('biz_content')).toBe(true);
    const response = await fetch(action!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    });
    const html = await response.text();
    expect(html).toContain('id="pay"');
    expect(html).toContain('https://shop.example.com/quit');
    expect(s.sandbox.ledger.find(no)).toMatchObject({
      product: 'wap',
      subject: 'wap "quoted" & more',
      amount: 990,
    });
    const pay = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
    const paid = await fetch(pay!, { method: 'POST' });
    expect(paid.status).toBe(200); // no return_url: a "paid" page
    expect(await paid.text()).toContain('id="paid"');
    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
  });

  it('page pay refuses a badly signed URL with an error page', async () => {
    const no = outTradeNo('PCX');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const url = sdkFor(s.config, other.toString()).pageExecute('alipay.trade.page.pay', 'GET', {
      bizContent: {
        out_trade_no: no,
        total_amount: '1.00',
        subject: 's',
        product_code: 'FAST_INSTANT_TRADE_PAY',
      },
      timestamp: beijing(),
    });
    const html = await (await fetch(url)).text();
    expect(html).toContain('<dd id="sub_code">isv.invalid-signature</dd>');
    expect(s.sandbox.ledger.find(no)).toBeUndefined();
  });

  it('app pay: the order string handed to the sandbox creates the trade', async () => {
    const no = outTradeNo('APP');
    const orderString = s.sdk.sdkExecute('alipay.trade.app.pay', {
      bizContent: {
        out_trade_no: no,
        total_amount: '3.00',
        subject: 'app',
        product_code: 'QUICK_MSECURITY_PAY',
      },
      notifyUrl: receiver.url,
      timestamp: beijing(),
    });
    const post = (body: string) =>
      fetch(`${s.base}/__sandbox/alipay/app-pay`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body,
      });

    const tampered = orderString.replace(encodeURIComponent('"3.00"'), encodeURIComponent('"0.01"'));
    expect(tampered).not.toBe(orderString);
    const refused = await post(tampered);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });

    const opened = await post(orderString);
    expect(opened.status).toBe(200);
    expect(await opened.json()).toMatchObject({
      code: '10000',
      out_trade_no: no,
      trade_status: 'WAIT_BUYER_PAY',
      total_amount: '3.00',
    });
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'WAIT_BUYER_PAY',
    });
    await control(`${no}/pay`);
    const [notify] = await receiver.waitFor(no, 1);
    expectVerifiedNotify(notify!);
    expect(await exec('alipay.trade.query', { out_trade_no: no })).toMatchObject({
      trade_status: 'TRADE_SUCCESS',
    });
    expect(s.sandbox.ledger.find(no)?.product).toBe('app');
  });
});

describe('Alipay sandbox: gateway errors', () => {
  it('refuses a request signed with another key, showing the gateway’s string-to-sign', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const timestamp = beijing();
    const biz = { out_trade_no: 'SIG1/中文' };
    const result = await sdkFor(s.config, other.toString()).exec(
      'alipay.trade.query',
      { bizContent: biz, timestamp },
      { validateSign: true }, // the refusal is signed: the app is known
    );
    expect(result).toMatchObject({
      code: '40002',
      msg: 'Invalid Arguments',
      sub_code: 'isv.invalid-signature',
    });
    const expected = `app_id=${s.config.appId}&biz_content=${JSON.stringify(biz)}&charset=utf-8&method=alipay.trade.query&sign_type=RSA2&timestamp=${timestamp}&version=1.0`;
    expect(result.sub_msg).toContain(`网关生成的验签字符串为：${expected}`);
  });

  it('refuses a changed parameter after signing', async () => {
    const form = new URLSearchParams(signedForm('alipay.trade.query', { out_trade_no: 'T1' }));
    form.set('biz_content', '{"out_trade_no":"T2"}');
    const text = await raw(form.toString());
    expect(JSON.parse(text).alipay_trade_query_response).toMatchObject({
      code: '40002',
      sub_code: 'isv.invalid-signature',
    });
  });

  it('leaves empty parameters out of the string-to-sign, as the real gateway does (alipay-sdk signs them)', async () => {
    const result = await s.sdk.exec(
      'alipay.trade.query',
      { bizContent: { out_trade_no: 'EMPTY1' }, timestamp: beijing(), notify_url: '' },
      { validateSign: true },
    );
    expect(result).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });
    expect(result.sub_msg).not.toContain('notify_url');
  });

  it('answers an unknown app_id unsigned', async () => {
    const result = await sdkFor(s.config, s.config.privateKey, '2021999999999999').exec(
      'alipay.trade.query',
      { bizContent: { out_trade_no: 'X' }, timestamp: beijing() },
      { validateSign: false },
    );
    expect(result).toMatchObject({ code: '40002', sub_code: 'isv.invalid-app-id' });
    const form = new URLSearchParams(signedForm('alipay.trade.query', { out_trade_no: 'X' }));
    form.set('app_id', '2021999999999999');
    const text = await raw(form.toString());
    expect(JSON.parse(text)).toEqual({
      alipay_trade_query_response: {
        code: '40002',
        msg: 'Invalid Arguments',
        sub_code: 'isv.invalid-app-id',
        sub_msg: '无效的AppID参数',
      },
    });
  });

  it('refuses stale, future and malformed timestamps', async () => {
    const minutes = (n: number) => beijing(new Date(Date.now() + n * 60_000));
    for (const timestamp of [
      minutes(-16),
      minutes(16),
      '2025/11/23 14:00:00',
      '2025-02-30 10:00:00',
      'now',
    ]) {
      const result = await s.sdk.exec(
        'alipay.trade.query',
        { bizContent: { out_trade_no: 'X' }, timestamp },
        { validateSign: true },
      );
      expect(result, timestamp).toMatchObject({ code: '40002', sub_code: 'isv.invalid-timestamp' });
    }
    for (const timestamp of [minutes(-14), minutes(14)]) {
      const result = await s.sdk.exec(
        'alipay.trade.query',
        { bizContent: { out_trade_no: 'X' }, timestamp },
        { validateSign: true },
      );
      expect(result, timestamp).toMatchObject({ code: '40004', sub_code: 'ACQ.TRADE_NOT_EXIST' });
    }
  });

  it('answers an unknown method under error_response, unsigned', async () => {
    const text = await raw(signedForm('alipay.trade.nonexistent', { out_trade_no: 'X' }));
    expect(JSON.parse(text)).toEqual({
      error_response: {
        code: '40002',
        msg: 'Invalid Arguments',
        sub_code: 'isv.invalid-method',
        sub_msg: '不存在的方法名',
      },
    });
  });

  it('reports missing signature, method and app_id', async () => {
    const form = new URLSearchParams(signedForm('alipay.trade.query', { out_trade_no: 'X' }));
    form.delete('sign');
    const text = await raw(form.toString());
    const parsed = JSON.parse(text);
    expect(parsed.alipay_trade_query_response).toMatchObject({
      code: '40001',
      sub_code: 'isv.missing-signature',
    });
    expect(parsed.sign).toBeTruthy();
    expect(JSON.parse(await raw('app_id=1')).error_response).toMatchObject({
      code: '40001',
      sub_code: 'isv.missing-method',
    });
    expect(JSON.parse(await raw('method=alipay.trade.query')).alipay_trade_query_response).toMatchObject({
      code: '40001',
      sub_code: 'isv.missing-app-id',
    });
  });

  it('accepts the parameters as one form, or all in the query string', async () => {
    const no = outTradeNo('Q');
    const form = signedForm('alipay.trade.precreate', {
      out_trade_no: no,
      total_amount: '1.00',
      subject: 'a b+c/d',
    });
    expect(JSON.parse(await raw(form)).alipay_trade_precreate_response).toMatchObject({ code: '10000' });
    const query = await (
      await fetch(`${s.config.gateway}?${signedForm('alipay.trade.query', { out_trade_no: no })}`)
    ).text();
    expect(JSON.parse(query).alipay_trade_query_response).toMatchObject({
      code: '10000',
      trade_status: 'WAIT_BUYER_PAY',
    });
    expect(s.sandbox.ledger.find(no)?.subject).toBe('a b+c/d');
  });

  it('refuses malformed payment amounts and missing fields', async () => {
    for (const total_amount of ['1.001', '01.00', '1,00', '100000000.01']) {
      const result = await exec('alipay.trade.precreate', {
        out_trade_no: outTradeNo('AMT'),
        total_amount,
        subject: 's',
      });
      expect(result.code, total_amount).toBe('40004');
      expect(['ACQ.INVALID_PARAMETER', 'ACQ.TOTAL_FEE_EXCEED']).toContain(result.sub_code);
    }
    expect(
      await exec('alipay.trade.precreate', { out_trade_no: outTradeNo('AMT'), total_amount: '1.00' }),
    ).toMatchObject({
      sub_code: 'ACQ.INVALID_PARAMETER',
    });
    expect(await exec('alipay.trade.query', {})).toMatchObject({ sub_code: 'ACQ.INVALID_PARAMETER' });
  });
});

describe('Alipay sandbox: notify retries', () => {
  it('retries until the answer is success: fail, fail, success → 3 deliveries with one notify_id', async () => {
    const no = outTradeNo('RT');
    await exec(
      'alipay.trade.precreate',
      { out_trade_no: no, total_amount: '1.00', subject: 's' },
      { notify_url: receiver.url },
    );
    receiver.answers.push('fail', 'fail');
    await control(`${no}/pay`);
    const notifies = await receiver.waitFor(no, 3);
    await s.sandbox.callbacks.idle();
    const deliveries = s.sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no);
    expect(deliveries.map((d) => [d.try, d.status, d.acknowledged])).toEqual([
      [1, 200, false],
      [2, 200, false],
      [3, 200, true],
    ]);
    expect(new Set(notifies.map((n) => n.notify_id)).size).toBe(1);
    for (const notify of notifies) expectVerifiedNotify(notify);
    expect(s.sandbox.callbacks.callbacks.find((c) => c.outTradeNo === no)).toMatchObject({
      state: 'acknowledged',
      tries: 3,
    });
  });

  it('does not take " success" for success, and gives up after 8 tries', async () => {
    const fast = await startSandbox(0.00001);
    const answers = new Receiver();
    await answers.start();
    try {
      const sdk = fast.sdk;
      const no = outTradeNo('SP');
      await sdk.exec(
        'alipay.trade.precreate',
        {
          bizContent: { out_trade_no: no, total_amount: '1.00', subject: 's' },
          notifyUrl: answers.url,
          timestamp: beijing(),
        },
        { validateSign: true },
      );
      answers.answers.push(...Array.from({ length: 8 }, () => ' success'));
      fast.sandbox.pay(no);
      await answers.waitFor(no, 8);
      await fast.sandbox.callbacks.idle();
      const deliveries = fast.sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no);
      expect(deliveries).toHaveLength(8);
      expect(deliveries.every((d) => !d.acknowledged)).toBe(true);
      expect(fast.sandbox.callbacks.callbacks.find((c) => c.outTradeNo === no)?.state).toBe('gave_up');
    } finally {
      await fast.app.close();
      await answers.close();
    }
  });
});
