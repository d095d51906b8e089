import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Aes, Formatter, Rsa, Wechatpay } from 'wechatpay-axios-plugin';
import { Sandbox } from '../src/sandbox.js';
import { createWechatPaySimulator, type WechatPayChannelConfig } from '../src/wechatpay/simulator.js';

/** Real servers and a real database do the work: wait generously, check often. */
const SETTLED = { timeout: 10_000, interval: 10 };

/**
 * The simulated WeChat Pay driven by an independent client, wechatpay-axios-plugin: it signs our
 * requests and verifies our responses itself, and its Rsa/AesGcm check the callbacks we send.
 */

interface Received {
  name: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let app: FastifyInstance;
let sandbox: Sandbox;
let address: string;
let config: WechatPayChannelConfig;
let wxpay: Wechatpay;
let receiver: http.Server;
let receiverBase: string;
let clockOffsetMs = 0;
const received: Received[] = [];
/** Per notify URL name: the HTTP status to answer on the n-th delivery (1-based). */
const responders = new Map<string, (n: number) => number>();

const hits = (name: string) => received.filter((r) => r.name === name);
const notifyUrl = (name: string) => `${receiverBase}/notify/${name}`;
let counter = 0;
const newNo = (prefix: string) => `${prefix}${Date.now()}${++counter}`;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const name = (req.url ?? '').replace(/^\/notify\//, '');
      received.push({ name, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = responders.get(name)?.(hits(name).length) ?? 200;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(status === 200 ? '{"code":"SUCCESS","message":"成功"}' : '{"code":"FAIL","message":"失败"}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  // No baseUrl given: the sandbox learns it from the first request's Host (the control call below).
  sandbox = new Sandbox({ timeScale: 0.001, now: () => new Date(Date.now() + clockOffsetMs) }, [
    createWechatPaySimulator,
  ]);
  app = Fastify();
  await app.register(sandbox.plugin, { prefix: '/__sandbox' });
  address = await app.listen({ host: '127.0.0.1', port: 0 });

  const response = await fetch(`${address}/__sandbox/control/merchants`, { method: 'POST' });
  expect(response.status).toBe(201);
  config = ((await response.json()) as { wechatpay: WechatPayChannelConfig }).wechatpay;
  wxpay = client(config.merchantPrivateKey);
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

function client(privateKey: string, serial = config.merchantSerialNo): Wechatpay {
  return new Wechatpay({
    mchid: config.mchId,
    serial,
    privateKey,
    certs: { [config.platformPublicKeyId]: config.platformPublicKey },
    baseURL: config.baseUrl,
    proxy: false,
    timeout: 5000,
  });
}

function nativeBody(outTradeNo: string, overrides: Record<string, unknown> = {}) {
  return {
    appid: config.appId,
    mchid: config.mchId,
    description: 'Sandbox item 测试',
    out_trade_no: outTradeNo,
    notify_url: notifyUrl(outTradeNo),
    amount: { total: 100, currency: 'CNY' },
    ...overrides,
  };
}

type Data = Record<string, unknown> & { amount?: Record<string, unknown>; payer?: Record<string, unknown> };

async function prepay(kind: 'native' | 'jsapi' | 'h5' | 'app', body: Record<string, unknown>) {
  return (await wxpay.chain(`v3/pay/transactions/${kind}`).post(body)) as { status: number; data: Data };
}

async function query(outTradeNo: string): Promise<Data> {
  const { data } = await wxpay.chain('v3/pay/transactions/out-trade-no/{out_trade_no}').get({
    params: { mchid: config.mchId },
    out_trade_no: outTradeNo,
  });
  return data as Data;
}

async function close(outTradeNo: string) {
  return wxpay
    .chain('v3/pay/transactions/out-trade-no/{out_trade_no}/close')
    .post({ mchid: config.mchId }, { out_trade_no: outTradeNo });
}

async function refund(body: Record<string, unknown>) {
  return (await wxpay.chain('v3/refund/domestic/refunds').post(body)) as { status: number; data: Data };
}

async function queryRefund(outRefundNo: string): Promise<Data> {
  const { data } = await wxpay
    .chain('v3/refund/domestic/refunds/{out_refund_no}')
    .get({ out_refund_no: outRefundNo });
  return data as Data;
}

/** The rejection of a plugin call: HTTP status and WeChat's error body. */
async function failure(call: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await call;
  } catch (error) {
    const response = (error as { response?: { status: number; data: { code: string; message: string } } })
      .response;
    if (!response) throw error;
    return { status: response.status, code: response.data.code, message: response.data.message };
  }
  throw new Error('the call succeeded');
}

async function control(method: 'GET' | 'POST', path: string, body?: unknown) {
  const response = await fetch(`${address}/__sandbox/control/${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.status, data: (await response.json()) as Record<string, unknown> };
}

/** Verifies a callback with the plugin (signature over the raw body) and decrypts its resource. */
function openCallback(hit: Received): { envelope: Data; resource: Data } {
  const h = hit.headers;
  expect(h['content-type']).toBe('application/json');
  expect(h['wechatpay-serial']).toBe(config.platformPublicKeyId);
  expect(h['wechatpay-signature-type']).toBe('WECHATPAY2-SHA256-RSA2048');
  expect(Math.abs(Number(h['wechatpay-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
  const message = Formatter.response(
    String(h['wechatpay-timestamp']),
    String(h['wechatpay-nonce']),
    hit.body,
  );
  expect(Rsa.verify(message, String(h['wechatpay-signature']), config.platformPublicKey)).toBe(true);
  const envelope = JSON.parse(hit.body) as Data & { resource: Record<string, string> };
  const { resource } = envelope;
  expect(resource.algorithm).toBe('AEAD_AES_256_GCM');
  expect(resource.nonce).toMatch(/^[0-9A-Za-z]{12}$/);
  const plaintext = Aes.AesGcm.decrypt(
    resource.ciphertext ?? '',
    config.apiV3Key,
    resource.nonce ?? '',
    resource.associated_data ?? '',
  );
  return { envelope, resource: JSON.parse(plaintext) as Data };
}

/** A request sent with node:http, so that every header is exactly what the test says. */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(path, address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Headers of a request signed by the plugin's own primitives over `signedPath` and `signedBody`. */
function signedHeaders(
  method: string,
  signedPath: string,
  signedBody: string,
  options: { timestamp?: number; privateKey?: string; mchid?: string } = {},
): Record<string, string> {
  const timestamp = options.timestamp ?? Formatter.timestamp();
  const nonce = Formatter.nonce();
  const signature = Rsa.sign(
    Formatter.request(method, signedPath, timestamp, nonce, signedBody),
    Rsa.from(options.privateKey ?? config.merchantPrivateKey, Rsa.KEY_TYPE_PRIVATE),
  );
  return {
    Authorization: Formatter.authorization(
      options.mchid ?? config.mchId,
      nonce,
      signature,
      timestamp,
      config.merchantSerialNo,
    ),
    Accept: 'application/json',
    'User-Agent': 'sandbox-test/1.0',
    ...(signedBody ? { 'Content-Type': 'application/json' } : {}),
  };
}

const wirePath = (path: string) => `/__sandbox/wechatpay${path}`;

function expectSignedBy(response: { headers: http.IncomingHttpHeaders; body: string }): void {
  const h = response.headers;
  expect(h['request-id']).toBeTruthy();
  expect(h['wechatpay-serial']).toBe(config.platformPublicKeyId);
  const message = Formatter.response(
    String(h['wechatpay-timestamp']),
    String(h['wechatpay-nonce']),
    response.body,
  );
  expect(Rsa.verify(message, String(h['wechatpay-signature']), config.platformPublicKey)).toBe(true);
}

describe('sandbox merchants', () => {
  it('POST /__sandbox/control/merchants returns a paycenter WeChat Pay channel config', () => {
    expect(Object.keys(config).sort()).toEqual(
      [
        'apiV3Key',
        'appId',
        'baseUrl',
        'mchId',
        'merchantPrivateKey',
        'merchantSerialNo',
        'platformPublicKey',
        'platformPublicKeyId',
      ].sort(),
    );
    expect(config.mchId).toMatch(/^\d{10}$/);
    expect(config.appId).toMatch(/^wx[0-9a-f]{16}$/);
    expect(config.apiV3Key).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(config.merchantSerialNo).toMatch(/^[0-9A-F]{40}$/);
    expect(config.platformPublicKeyId).toMatch(/^PUB_KEY_ID_\d+$/);
    expect(config.baseUrl).toBe(`${address}/__sandbox/wechatpay`);
    expect(config.merchantPrivateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(config.platformPublicKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const privateKey = createPrivateKey(config.merchantPrivateKey);
    expect(privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(createPublicKey(config.platformPublicKey).asymmetricKeyType).toBe('rsa');
  });

  it('gives every call fresh credentials', async () => {
    const again = await control('POST', 'merchants');
    const other = again.data.wechatpay as WechatPayChannelConfig;
    expect(other.mchId).not.toBe(config.mchId);
    expect(other.merchantSerialNo).not.toBe(config.merchantSerialNo);
    expect(other.platformPublicKey).not.toBe(config.platformPublicKey);
  });
});

describe('native payment, end to end', () => {
  it('prepay → NOTPAY → pay → signed, encrypted TRANSACTION.SUCCESS callback → SUCCESS', async () => {
    const no = newNo('NT');
    const created = await prepay('native', nativeBody(no, { attach: 'cart=42' }));
    expect(created.status).toBe(200);
    expect(created.data.code_url).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=[0-9A-Za-z]+$/);

    const waiting = await query(no);
    expect(waiting).toMatchObject({
      appid: config.appId,
      mchid: config.mchId,
      out_trade_no: no,
      trade_state: 'NOTPAY',
      amount: { total: 100 },
    });
    expect(waiting.transaction_id).toBeUndefined();

    const view = await control('GET', `payments/${no}`);
    expect(view.data).toMatchObject({
      provider: 'wechatpay',
      status: 'waiting',
      amount: 100,
      product: 'NATIVE',
    });

    const paid = await control('POST', `payments/${no}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.data).toMatchObject({ status: 'paid', paidAmount: 100 });
    await sandbox.callbacks.idle();

    const [hit] = hits(no);
    expect(hits(no)).toHaveLength(1);
    const { envelope, resource } = openCallback(hit!);
    expect(envelope).toMatchObject({
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      resource: { original_type: 'transaction', associated_data: 'transaction' },
    });
    expect(envelope.id).toMatch(/^EV-\d{19}$/);
    expect(envelope.create_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(resource).toMatchObject({
      appid: config.appId,
      mchid: config.mchId,
      out_trade_no: no,
      trade_type: 'NATIVE',
      trade_state: 'SUCCESS',
      attach: 'cart=42',
      amount: { total: 100, payer_total: 100, currency: 'CNY', payer_currency: 'CNY' },
    });
    expect(resource.transaction_id).toMatch(/^\d{28}$/);
    expect(resource.payer?.openid).toMatch(/^o[\w-]{27}$/);
    expect(resource.success_time).toMatch(/\+08:00$/);

    const success = await query(no);
    expect(success).toMatchObject({
      trade_state: 'SUCCESS',
      transaction_id: resource.transaction_id,
      trade_type: 'NATIVE',
      payer: resource.payer,
      success_time: resource.success_time,
      amount: { total: 100, payer_total: 100 },
    });
    const byId = await wxpay.chain('v3/pay/transactions/id/{transaction_id}').get({
      params: { mchid: config.mchId },
      transaction_id: String(resource.transaction_id),
    });
    expect(byId.data).toMatchObject({ out_trade_no: no, trade_state: 'SUCCESS' });

    const deliveries = sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no);
    expect(deliveries).toMatchObject([
      { provider: 'wechatpay', kind: 'payment', try: 1, status: 200, acknowledged: true },
    ]);
  });

  it('reports a different paid amount in the callback and the query when the control API says so', async () => {
    const no = newNo('MM');
    await prepay('native', nativeBody(no));
    await control('POST', `payments/${no}/pay`, { amount: 1 });
    await sandbox.callbacks.idle();
    expect(openCallback(hits(no)[0]!).resource.amount).toMatchObject({ total: 1, payer_total: 1 });
    expect((await query(no)).amount).toMatchObject({ total: 1, payer_total: 1 });
  });

  it('signs the full path on the wire, prefix included: a signature over /v3/… alone is refused', async () => {
    const path = `/v3/pay/transactions/out-trade-no/NOPE000001?mchid=${config.mchId}`;
    const withoutPrefix = await rawRequest('GET', wirePath(path), signedHeaders('GET', path, ''));
    expect(withoutPrefix.status).toBe(401);
    expect(JSON.parse(withoutPrefix.body).code).toBe('SIGN_ERROR');
    const withPrefix = await rawRequest('GET', wirePath(path), signedHeaders('GET', wirePath(path), ''));
    expect(withPrefix.status).toBe(404);
    expect(JSON.parse(withPrefix.body)).toMatchObject({ code: 'ORDER_NOT_EXIST' });
    expectSignedBy(withPrefix);
  });
});

describe('other products', () => {
  it('jsapi: prepay_id, the payer’s openid in the transaction; payer.openid required', async () => {
    const no = newNo('JS');
    const openid = 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o';
    const { data } = await prepay('jsapi', nativeBody(no, { payer: { openid } }));
    expect(data.prepay_id).toMatch(/^wx[0-9a-f]{34}$/);
    await control('POST', `payments/${no}/pay`);
    expect(await query(no)).toMatchObject({ trade_type: 'JSAPI', payer: { openid } });
    expect(sandbox.ledger.find(no)).toMatchObject({ product: 'JSAPI', payerId: openid });

    const missing = await failure(prepay('jsapi', nativeBody(newNo('JS'))));
    expect(missing).toMatchObject({ status: 400, code: 'PARAM_ERROR' });
    expect(missing.message).toContain('/payer');
  });

  it('app: prepay_id, trade_type APP', async () => {
    const no = newNo('AP');
    const { data } = await prepay('app', nativeBody(no));
    expect(data.prepay_id).toMatch(/^wx/);
    await control('POST', `payments/${no}/pay`);
    expect(await query(no)).toMatchObject({ trade_type: 'APP', trade_state: 'SUCCESS' });
  });

  it('h5: h5_url to a sandbox page that pays and redirects; scene_info required', async () => {
    const no = newNo('H5');
    const sceneInfo = { payer_client_ip: '203.0.113.7', h5_info: { type: 'Wap' } };
    const { data } = await prepay('h5', nativeBody(no, { scene_info: sceneInfo }));
    const h5Url = String(data.h5_url);
    expect(h5Url.startsWith(`${config.baseUrl}/h5pay?prepay_id=wx`)).toBe(true);
    expect(sandbox.ledger.find(no)?.product).toBe('MWEB');

    const page = await fetch(`${h5Url}&redirect_url=${encodeURIComponent('https://shop.example/done')}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('¥1.00');
    const prepayId = new URL(h5Url).searchParams.get('prepay_id') ?? '';
    const paid = await fetch(`${config.baseUrl}/h5pay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        prepay_id: prepayId,
        redirect_url: 'https://shop.example/done',
      }).toString(),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toBe('https://shop.example/done');
    await sandbox.callbacks.idle();
    expect(openCallback(hits(no)[0]!).resource).toMatchObject({ trade_type: 'MWEB', trade_state: 'SUCCESS' });

    expect(await failure(prepay('h5', nativeBody(newNo('H5'))))).toMatchObject({
      status: 400,
      code: 'PARAM_ERROR',
    });
    const noType = { scene_info: { payer_client_ip: '203.0.113.7' } };
    expect(await failure(prepay('h5', nativeBody(newNo('H5'), noType)))).toMatchObject({
      code: 'PARAM_ERROR',
    });
  });
});

describe('prepay re-entry and order state', () => {
  it('identical parameters → 200 with the current credential; different → 400 INVALID_REQUEST', async () => {
    const no = newNo('RE');
    const first = await prepay('native', nativeBody(no));
    // Key order does not matter: the parameters are compared, not the bytes.
    const { amount, ...rest } = nativeBody(no);
    const again = await prepay('native', { amount, ...rest });
    expect(again.status).toBe(200);
    expect(again.data.code_url).toBe(first.data.code_url);

    const different = await failure(
      prepay('native', nativeBody(no, { amount: { total: 200, currency: 'CNY' } })),
    );
    expect(different).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    const otherProduct = await failure(prepay('app', nativeBody(no)));
    expect(otherProduct).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect(sandbox.ledger.find(no)?.amount).toBe(100);
  });

  it('a paid order answers ORDERPAID, a closed one ORDER_CLOSED', async () => {
    const paidNo = newNo('OP');
    await prepay('native', nativeBody(paidNo));
    await control('POST', `payments/${paidNo}/pay`);
    expect(await failure(prepay('native', nativeBody(paidNo)))).toMatchObject({
      status: 400,
      code: 'ORDERPAID',
    });

    const closedNo = newNo('OC');
    await prepay('native', nativeBody(closedNo));
    await close(closedNo);
    expect(await failure(prepay('native', nativeBody(closedNo)))).toMatchObject({
      status: 400,
      code: 'ORDER_CLOSED',
    });
  });

  it('close → 204 (signed, re-entrant) → CLOSED; a paid order cannot be closed; unknown → 404', async () => {
    const no = newNo('CL');
    await prepay('native', nativeBody(no));
    const closed = await close(no);
    expect(closed.status).toBe(204);
    expect((await close(no)).status).toBe(204);
    expect(await query(no)).toMatchObject({ trade_state: 'CLOSED', trade_state_desc: '订单已关闭' });
    expect(sandbox.ledger.find(no)?.status).toBe('closed');
    expect((await control('POST', `payments/${no}/pay`)).status).toBe(409);

    const paidNo = newNo('CP');
    await prepay('native', nativeBody(paidNo));
    await control('POST', `payments/${paidNo}/pay`);
    expect(await failure(close(paidNo))).toMatchObject({ status: 400, code: 'ORDERPAID' });
    expect(await failure(close('UNKNOWN0001'))).toMatchObject({ status: 404, code: 'ORDER_NOT_EXIST' });
    expect(await failure(query('UNKNOWN0001'))).toMatchObject({ status: 404, code: 'ORDER_NOT_EXIST' });
  });

  it('the control API closes a waiting order without a callback', async () => {
    const no = newNo('CC');
    await prepay('native', nativeBody(no));
    expect((await control('POST', `payments/${no}/close`)).data).toMatchObject({ status: 'closed' });
    expect(await query(no)).toMatchObject({ trade_state: 'CLOSED' });
    await sandbox.callbacks.idle();
    expect(hits(no)).toHaveLength(0);
  });

  it('an order past time_expire reads as CLOSED and cannot be paid', async () => {
    const no = newNo('EX');
    // time_expire is clamped to at least a minute after the order.
    await prepay('native', nativeBody(no, { time_expire: new Date(Date.now() + 1000).toISOString() }));
    expect(sandbox.ledger.find(no)!.expireAt!.getTime()).toBeGreaterThanOrEqual(Date.now() + 55_000);
    clockOffsetMs = 90_000;
    try {
      expect(await query(no)).toMatchObject({ trade_state: 'CLOSED' });
      expect((await control('POST', `payments/${no}/pay`)).status).toBe(409);
    } finally {
      clockOffsetMs = 0;
    }
    const noExpiry = newNo('EX');
    await prepay('native', nativeBody(noExpiry));
    const payment = sandbox.ledger.find(noExpiry)!;
    expect(payment.expireAt!.getTime() - payment.createdAt.getTime()).toBe(7 * 24 * 3600_000);
  });
});

describe('refunds', () => {
  async function paidOrder(total = 100): Promise<string> {
    const no = newNo('RF');
    await prepay('native', nativeBody(no, { amount: { total, currency: 'CNY' } }));
    await control('POST', `payments/${no}/pay`);
    await sandbox.callbacks.idle();
    return no;
  }

  const refundBody = (
    no: string,
    outRefundNo: string,
    refundAmount: number,
    extra: Record<string, unknown> = {},
  ) => ({
    out_trade_no: no,
    out_refund_no: outRefundNo,
    notify_url: notifyUrl(outRefundNo),
    amount: { refund: refundAmount, total: 100, currency: 'CNY' },
    ...extra,
  });

  it('PROCESSING → REFUND.SUCCESS callback → SUCCESS; the order reads REFUND', async () => {
    const no = await paidOrder();
    const outRefundNo = newNo('R');
    const accepted = await refund(refundBody(no, outRefundNo, 30, { reason: 'changed my mind' }));
    expect(accepted.status).toBe(200);
    expect(accepted.data).toMatchObject({
      out_refund_no: outRefundNo,
      out_trade_no: no,
      status: 'PROCESSING',
      amount: { total: 100, refund: 30, payer_total: 100, payer_refund: 30, currency: 'CNY' },
    });
    expect(accepted.data.refund_id).toMatch(/^\d{29}$/);
    expect(accepted.data.success_time).toBeUndefined();

    await vi.waitFor(() => expect(hits(outRefundNo)).toHaveLength(1), SETTLED);
    const { envelope, resource } = openCallback(hits(outRefundNo)[0]!);
    expect(envelope).toMatchObject({
      event_type: 'REFUND.SUCCESS',
      resource: { original_type: 'refund', associated_data: 'refund' },
    });
    expect(resource).toMatchObject({
      mchid: config.mchId,
      out_trade_no: no,
      out_refund_no: outRefundNo,
      refund_id: accepted.data.refund_id,
      refund_status: 'SUCCESS',
      amount: { total: 100, refund: 30, payer_total: 100, payer_refund: 30 },
    });
    expect(resource.success_time).toMatch(/\+08:00$/);

    expect(await queryRefund(outRefundNo)).toMatchObject({
      status: 'SUCCESS',
      refund_id: accepted.data.refund_id,
    });
    expect(await query(no)).toMatchObject({ trade_state: 'REFUND' });
    expect(sandbox.ledger.find(no)?.refunds).toMatchObject([
      { outRefundNo, amount: 30, status: 'succeeded' },
    ]);

    // The same out_refund_no refunds once: the same refund comes back.
    const repeated = await refund(refundBody(no, outRefundNo, 30, { reason: 'changed my mind' }));
    expect(repeated.data).toMatchObject({ refund_id: accepted.data.refund_id, status: 'SUCCESS' });
    expect(sandbox.ledger.find(no)?.refunds).toHaveLength(1);
    expect(await failure(refund(refundBody(no, outRefundNo, 31)))).toMatchObject({
      status: 400,
      code: 'INVALID_REQUEST',
    });
  });

  it('by transaction_id; without its own notify_url the callback goes to the payment’s', async () => {
    const no = await paidOrder();
    const transactionId = String((await query(no)).transaction_id);
    const outRefundNo = newNo('T');
    await refund({
      transaction_id: transactionId,
      out_refund_no: outRefundNo,
      amount: { refund: 100, total: 100, currency: 'CNY' },
    });
    await vi.waitFor(() => expect(hits(no)).toHaveLength(2), SETTLED);
    expect(openCallback(hits(no)[1]!).envelope.event_type).toBe('REFUND.SUCCESS');
  });

  it('the SANDBOX_ABNORMAL marker in the reason gives ABNORMAL and REFUND.ABNORMAL', async () => {
    const no = await paidOrder();
    const outRefundNo = newNo('A');
    await refund(refundBody(no, outRefundNo, 100, { reason: 'test SANDBOX_ABNORMAL' }));
    await vi.waitFor(() => expect(hits(outRefundNo)).toHaveLength(1), SETTLED);
    const { envelope, resource } = openCallback(hits(outRefundNo)[0]!);
    expect(envelope.event_type).toBe('REFUND.ABNORMAL');
    expect(resource.refund_status).toBe('ABNORMAL');
    expect(resource.success_time).toBeUndefined();
    expect(await queryRefund(outRefundNo)).toMatchObject({ status: 'ABNORMAL' });

    // Rerouted in the merchant console, WeChat pays it out and says so; only an abnormal refund can be.
    sandbox.rerouteRefund(no, outRefundNo);
    await vi.waitFor(() => expect(hits(outRefundNo)).toHaveLength(2), SETTLED);
    expect(openCallback(hits(outRefundNo)[1]!).envelope.event_type).toBe('REFUND.SUCCESS');
    expect(await queryRefund(outRefundNo)).toMatchObject({ status: 'SUCCESS' });
    expect(() => sandbox.rerouteRefund(no, outRefundNo)).toThrow(/not abnormal/);
    expect(() => sandbox.rerouteRefund(no, 'NOPE')).toThrow(/no refund NOPE/);
  });

  it('the SANDBOX_CLOSED marker gives CLOSED and REFUND.CLOSED, and frees the amount again', async () => {
    const no = await paidOrder();
    const outRefundNo = newNo('C');
    await refund(refundBody(no, outRefundNo, 100, { reason: 'SANDBOX_CLOSED' }));
    await vi.waitFor(() => expect(hits(outRefundNo)).toHaveLength(1), SETTLED);
    expect(openCallback(hits(outRefundNo)[0]!).resource.refund_status).toBe('CLOSED');
    expect(await query(no)).toMatchObject({ trade_state: 'SUCCESS' });
    expect((await refund(refundBody(no, newNo('C'), 100))).data.status).toBe('PROCESSING');
  });

  it('refuses more than is left, a wrong total, an unpaid or unknown order, an unknown refund', async () => {
    const no = await paidOrder();
    await refund(refundBody(no, newNo('P'), 60));
    expect(await failure(refund(refundBody(no, newNo('P'), 41)))).toMatchObject({
      status: 400,
      code: 'INVALID_REQUEST',
    });
    const wrongTotal = refundBody(no, newNo('P'), 10, { amount: { refund: 10, total: 99, currency: 'CNY' } });
    expect(await failure(refund(wrongTotal))).toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    expect((await refund(refundBody(no, newNo('P'), 40))).data.status).toBe('PROCESSING');

    expect(await failure(refund(refundBody('UNKNOWN0002', newNo('P'), 1)))).toMatchObject({
      status: 404,
      code: 'RESOURCE_NOT_EXISTS',
    });
    const unpaid = newNo('UP');
    await prepay('native', nativeBody(unpaid));
    expect(await failure(refund(refundBody(unpaid, newNo('P'), 1)))).toMatchObject({
      status: 404,
      code: 'RESOURCE_NOT_EXISTS',
    });
    expect(await failure(queryRefund('NO_SUCH_REFUND'))).toMatchObject({
      status: 404,
      code: 'RESOURCE_NOT_EXISTS',
    });
    const noCurrency = refundBody(no, newNo('P'), 1, { amount: { refund: 1, total: 100 } });
    expect(await failure(refund(noCurrency))).toMatchObject({ status: 400, code: 'PARAM_ERROR' });
  });
});

describe('request verification', () => {
  const path = '/v3/pay/transactions/native';

  it('a request signed with another key → 401 SIGN_ERROR, signed by the platform key', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const intruder = client(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(
      await failure(intruder.chain('v3/pay/transactions/native').post(nativeBody(newNo('SK')))),
    ).toMatchObject({
      status: 401,
      code: 'SIGN_ERROR',
    });
    const body = JSON.stringify(nativeBody(newNo('SK')));
    const response = await rawRequest(
      'POST',
      wirePath(path),
      signedHeaders('POST', wirePath(path), body, {
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      }),
      body,
    );
    expect(response.status).toBe(401);
    expectSignedBy(response);
  });

  it('another serial_no → 401 SIGN_ERROR', async () => {
    const wrongSerial = client(config.merchantPrivateKey, 'A'.repeat(40));
    expect(
      await failure(wrongSerial.chain('v3/pay/transactions/native').post(nativeBody(newNo('SN')))),
    ).toMatchObject({
      status: 401,
      code: 'SIGN_ERROR',
    });
  });

  it('a timestamp more than 300 s away → 401; within → accepted', async () => {
    const body = JSON.stringify(nativeBody(newNo('TS')));
    const stale = signedHeaders('POST', wirePath(path), body, { timestamp: Formatter.timestamp() - 301 });
    const response = await rawRequest('POST', wirePath(path), stale, body);
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).code).toBe('SIGN_ERROR');
    const future = signedHeaders('POST', wirePath(path), body, { timestamp: Formatter.timestamp() + 301 });
    expect((await rawRequest('POST', wirePath(path), future, body)).status).toBe(401);
    const recent = signedHeaders('POST', wirePath(path), body, { timestamp: Formatter.timestamp() - 200 });
    const ok = await rawRequest('POST', wirePath(path), recent, body);
    expect(ok.status).toBe(200);
    expectSignedBy(ok);
  });

  it('a body changed after signing, or re-serialised, → 401', async () => {
    const object = nativeBody(newNo('TB'));
    const body = JSON.stringify(object);
    const headers = signedHeaders('POST', wirePath(path), body);
    const tampered = body.replace('"total":100', '"total":1');
    expect((await rawRequest('POST', wirePath(path), headers, tampered)).status).toBe(401);
    expect((await rawRequest('POST', wirePath(path), headers, JSON.stringify(object, null, 1))).status).toBe(
      401,
    );
    expect((await rawRequest('POST', wirePath(path), headers, body)).status).toBe(200);
  });

  it('a query left out of the signed URL → 401', async () => {
    const signed = `/v3/pay/transactions/out-trade-no/NOPE000002`;
    const sent = `${signed}?mchid=${config.mchId}`;
    const response = await rawRequest('GET', wirePath(sent), signedHeaders('GET', wirePath(signed), ''));
    expect(response.status).toBe(401);
  });

  it('missing User-Agent or Accept → 400 INVALID_REQUEST; missing or malformed Authorization refused', async () => {
    const body = JSON.stringify(nativeBody(newNo('UA')));
    const { 'User-Agent': _ua, ...noUserAgent } = signedHeaders('POST', wirePath(path), body);
    const r1 = await rawRequest('POST', wirePath(path), noUserAgent, body);
    expect(r1.status).toBe(400);
    expect(JSON.parse(r1.body)).toMatchObject({ code: 'INVALID_REQUEST' });
    const { Accept: _accept, ...noAccept } = signedHeaders('POST', wirePath(path), body);
    expect((await rawRequest('POST', wirePath(path), noAccept, body)).status).toBe(400);

    const { Authorization: _auth, ...noAuth } = signedHeaders('POST', wirePath(path), body);
    const r3 = await rawRequest('POST', wirePath(path), noAuth, body);
    expect(r3.status).toBe(401);
    expect(JSON.parse(r3.body).code).toBe('SIGN_ERROR');
    const malformed = { ...noAuth, Authorization: 'Bearer abc' };
    expect((await rawRequest('POST', wirePath(path), malformed, body)).status).toBe(400);
  });

  it('a body that is not application/json, a query without mchid, an unknown API → WeChat-style errors', async () => {
    const body = JSON.stringify(nativeBody(newNo('CT')));
    const { 'Content-Type': _type, ...noType } = signedHeaders('POST', wirePath(path), body);
    const r1 = await rawRequest('POST', wirePath(path), { ...noType, 'Content-Type': 'text/plain' }, body);
    expect(r1.status).toBe(400);
    expect(JSON.parse(r1.body).code).toBe('INVALID_REQUEST');
    const r2 = await rawRequest('POST', wirePath(path), noType, body);
    expect(r2.status).toBe(400);

    const queryPath = '/v3/pay/transactions/out-trade-no/NOPE000003';
    const r3 = await rawRequest('GET', wirePath(queryPath), signedHeaders('GET', wirePath(queryPath), ''));
    expect(r3.status).toBe(400);
    expect(JSON.parse(r3.body)).toMatchObject({
      code: 'PARAM_ERROR',
      detail: { field: 'mchid', location: 'query' },
    });
    expectSignedBy(r3);

    const unknown = '/v3/pay/transactions/nowhere';
    const r4 = await rawRequest(
      'POST',
      wirePath(unknown),
      signedHeaders('POST', wirePath(unknown), body),
      body,
    );
    expect(r4.status).toBe(404);
    expect(JSON.parse(r4.body).code).toBe('NOT_FOUND');
  });

  it('the mchid in Authorization must be the body’s; the appid must be the merchant’s', async () => {
    const body = JSON.stringify(nativeBody(newNo('MC'), { mchid: '1900000001' }));
    const response = await rawRequest(
      'POST',
      wirePath(path),
      signedHeaders('POST', wirePath(path), body),
      body,
    );
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'INVALID_REQUEST' });
    expectSignedBy(response);
    expect(
      await failure(prepay('native', nativeBody(newNo('AI'), { appid: 'wx0000000000000000' }))),
    ).toMatchObject({
      status: 400,
      code: 'APPID_MCHID_NOT_MATCH',
    });
  });

  it.each([
    ['description over 127 characters', { description: 'x'.repeat(128) }],
    ['out_trade_no under 6 characters', { out_trade_no: 'AB12' }],
    ['out_trade_no with a dot', { out_trade_no: 'ABC.12345' }],
    ['amount.total 0', { amount: { total: 0, currency: 'CNY' } }],
    ['amount.total not an integer', { amount: { total: 1.5, currency: 'CNY' } }],
    ['currency USD', { amount: { total: 100, currency: 'USD' } }],
    ['notify_url with a query string', { notify_url: 'https://shop.example/notify?x=1' }],
    ['notify_url not absolute', { notify_url: '/notify' }],
    ['time_expire not RFC 3339', { time_expire: '2030-01-01 10:00:00' }],
    ['no description', { description: undefined }],
    ['a 4-byte UTF-8 character', { description: 'coffee ☕ 🍰' }],
  ])('prepay with %s → 400 PARAM_ERROR', async (_label, overrides) => {
    const outcome = await failure(prepay('native', nativeBody(newNo('PE'), overrides)));
    expect(outcome).toMatchObject({ status: 400, code: 'PARAM_ERROR' });
  });
});

describe('callback delivery', () => {
  it('retries on WeChat’s schedule: 500, 500, then 200 → three deliveries, acknowledged at try 3', async () => {
    const no = newNo('RT');
    responders.set(no, (n) => (n <= 2 ? 500 : 200));
    await prepay('native', nativeBody(no));
    await control('POST', `payments/${no}/pay`);
    await sandbox.callbacks.idle();
    const deliveries = sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no);
    expect(deliveries.map((d) => [d.try, d.status, d.acknowledged])).toEqual([
      [1, 500, false],
      [2, 500, false],
      [3, 200, true],
    ]);
    expect(sandbox.callbacks.callbacks.find((c) => c.outTradeNo === no)).toMatchObject({
      state: 'acknowledged',
      tries: 3,
    });
    // Each try is signed afresh; the notification itself (id, resource) is the same.
    const tries = hits(no).map(openCallback);
    expect(new Set(tries.map((t) => t.envelope.id)).size).toBe(1);
    expect(new Set(hits(no).map((h) => h.headers['wechatpay-nonce'])).size).toBe(3);
  });

  it('a 204 answer is acknowledged too', async () => {
    const no = newNo('AK');
    responders.set(no, () => 204);
    await prepay('native', nativeBody(no));
    await control('POST', `payments/${no}/pay`);
    await sandbox.callbacks.idle();
    expect(sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === no)).toMatchObject([
      { acknowledged: true },
    ]);
  });

  it('drop → no delivery; duplicate → two deliveries of the same notification', async () => {
    const dropped = newNo('DR');
    await prepay('native', nativeBody(dropped));
    expect((await control('POST', 'callbacks', { mode: 'drop' })).status).toBe(200);
    await control('POST', `payments/${dropped}/pay`);
    await sandbox.callbacks.idle();
    expect(hits(dropped)).toHaveLength(0);
    expect(sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === dropped)).toHaveLength(0);
    expect(sandbox.callbacks.callbacks.find((c) => c.outTradeNo === dropped)?.state).toBe('dropped');
    expect(await query(dropped)).toMatchObject({ trade_state: 'SUCCESS' });

    const duplicated = newNo('DU');
    await prepay('native', nativeBody(duplicated));
    await control('POST', 'callbacks', { mode: 'duplicate' });
    await control('POST', `payments/${duplicated}/pay`);
    await sandbox.callbacks.idle();
    expect(hits(duplicated)).toHaveLength(2);
    expect(sandbox.callbacks.deliveries.filter((d) => d.outTradeNo === duplicated)).toHaveLength(2);
    const [a, b] = hits(duplicated).map(openCallback);
    expect(a!.envelope.id).toBe(b!.envelope.id);
  });
});
