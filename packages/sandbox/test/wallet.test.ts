import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Wechatpay } from 'wechatpay-axios-plugin';
import { createSandbox } from '../src/create.js';
import type { Sandbox } from '../src/sandbox.js';
import { safeReturnPath } from '../src/wallet/wallet.js';
import type { WechatPayChannelConfig } from '../src/wechatpay/simulator.js';

/**
 * The sandbox wallet (a payer's phone: see a payment, press Pay) and the demo merchant (the return
 * page and the webhook receiver), over HTTP as a browser and paycenter reach them.
 */

let app: FastifyInstance;
let sandbox: Sandbox;
let base: string;
let config: WechatPayChannelConfig;
let wxpay: Wechatpay;
let receiver: http.Server;
let notifyUrl: string;
const callbacks: string[] = [];
let clockOffsetMs = 0;
let counter = 0;
const newNo = () => `W${Date.now()}${++counter}`;
const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      callbacks.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"code":"SUCCESS","message":"成功"}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify`;

  sandbox = createSandbox({ timeScale: 0.001, now: () => new Date(Date.now() + clockOffsetMs) });
  app = Fastify();
  await app.register(sandbox.plugin, { prefix: '/__sandbox' });
  base = `${await app.listen({ host: '127.0.0.1', port: 0 })}/__sandbox`;
  config = (
    (await (await fetch(`${base}/control/merchants`, { method: 'POST' })).json()) as {
      wechatpay: WechatPayChannelConfig;
    }
  ).wechatpay;
  wxpay = new Wechatpay({
    mchid: config.mchId,
    serial: config.merchantSerialNo,
    privateKey: config.merchantPrivateKey,
    certs: { [config.platformPublicKeyId]: config.platformPublicKey },
    baseURL: config.baseUrl,
    proxy: false,
    timeout: 5000,
  });
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function nativeOrder(overrides: Record<string, unknown> = {}): Promise<string> {
  const outTradeNo = newNo();
  const res = (await wxpay.chain('v3/pay/transactions/native').post({
    appid: config.appId,
    mchid: config.mchId,
    description: 'Jasmine tea 茉莉花茶',
    out_trade_no: outTradeNo,
    notify_url: notifyUrl,
    amount: { total: 1234, currency: 'CNY' },
    ...overrides,
  })) as { status: number };
  expect(res.status).toBe(200);
  return outTradeNo;
}

describe('the sandbox wallet', () => {
  it('shows a waiting payment with a Pay button, and paying sends the provider’s callback', async () => {
    const no = await nativeOrder();
    expect(sandbox.walletUrl(no)).toBe(`${base}/wallet/${no}`);
    const page = await fetch(`${base}/wallet/${no}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('微信支付 WeChat Pay');
    expect(html).toContain('Jasmine tea 茉莉花茶');
    expect(html).toContain('id="amount"><small>¥</small>12.34');
    expect(html).toContain('data-status="waiting"');
    expect(html).toMatch(/<form method="post" action="W\d+\/pay"><button type="submit" id="pay">/);

    const paid = await fetch(`${base}/wallet/${no}/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    expect(new URL(paid.headers.get('location')!, `${base}/wallet/${no}/pay`).pathname).toBe(
      `/__sandbox/wallet/${no}`,
    );
    expect(sandbox.ledger.find(no)).toMatchObject({ status: 'paid', paidAmount: 1234 });
    await sandbox.callbacks.idle();
    expect(callbacks.length).toBeGreaterThanOrEqual(1);
    const after = await (await fetch(`${base}/wallet/${no}`)).text();
    expect(after).toContain('data-status="paid"');
    expect(after).not.toContain('id="pay"');

    // Paying twice is refused, and said so on the page.
    const twice = await fetch(`${base}/wallet/${no}/pay`, { method: 'POST', redirect: 'manual' });
    expect(twice.status).toBe(409);
    expect(await twice.text()).toContain('id="error"');
  });

  it('goes back to the cashier that sent the payer, and only to a path on this site', async () => {
    const no = await nativeOrder();
    const back = '/cashier/42?token=abc';
    const html = await (await fetch(`${base}/wallet/${no}?return=${encodeURIComponent(back)}`)).text();
    expect(html).toContain(`action="${no}/pay?return=${encodeURIComponent(back)}"`);
    expect(html).toContain('id="back" href="/cashier/42?token=abc"');
    const paid = await fetch(`${base}/wallet/${no}/pay?return=${encodeURIComponent(back)}`, {
      method: 'POST',
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    const landed = await (
      await fetch(new URL(paid.headers.get('location')!, `${base}/wallet/${no}/pay`))
    ).text();
    // Paid: back to the cashier after a second.
    expect(landed).toContain('<meta http-equiv="refresh" content="1;url=/cashier/42?token=abc">');

    for (const bad of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
      '/a b',
    ]) {
      expect(safeReturnPath(bad)).toBeUndefined();
      const page = await (await fetch(`${base}/wallet/${no}?return=${encodeURIComponent(bad)}`)).text();
      expect(page).not.toContain('id="back"');
    }
    expect(safeReturnPath('/cashier/1?token=x')).toBe('/cashier/1?token=x');
  });

  it('says when a payment is unknown or expired, and lists what is waiting', async () => {
    const unknown = await fetch(`${base}/wallet/NOPE123`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('id="not-found"');
    expect(sandbox.walletUrl('NOPE123')).toBeUndefined();

    const no = await nativeOrder({ description: 'Listed tea' });
    const list = await (await fetch(`${base}/wallet`)).text();
    expect(list).toContain(`href="wallet/${no}"`);
    expect(list).toContain('Listed tea');

    const soon = await nativeOrder({
      time_expire: new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, '+00:00'),
    });
    clockOffsetMs = 120_000;
    try {
      const page = await (await fetch(`${base}/wallet/${soon}`)).text();
      expect(page).toContain('data-status="expired"');
      expect(page).not.toContain('id="pay"');
    } finally {
      clockOffsetMs = 0;
    }
  });
});

describe('the demo merchant', () => {
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${base}/merchant/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  it('verifies Standard Webhooks signatures with the app secret it was given, and lists what arrived', async () => {
    sandbox.demoMerchant.useWebhookSecret(SECRET);
    const body = JSON.stringify({
      id: 'evt_1',
      type: 'order.paid',
      createdAt: new Date().toISOString(),
      data: { id: '4242', status: 'paid' },
    });
    const now = new Date();
    const good = await post(body, {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': `v1,bm9wZQ== ${new Webhook(SECRET).sign('msg_1', now, body)}`,
    });
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({ code: 'SUCCESS' });

    const tampered = await post(body.replace('4242', '4243'), {
      'webhook-id': 'msg_2',
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(SECRET).sign('msg_2', now, body),
    });
    expect(tampered.status).toBe(401);
    const old = new Date(now.getTime() - 3600_000);
    const stale = await post(body, {
      'webhook-id': 'msg_3',
      'webhook-timestamp': String(Math.floor(old.getTime() / 1000)),
      'webhook-signature': new Webhook(SECRET).sign('msg_3', old, body),
    });
    expect(stale.status).toBe(401);

    const listed = (await (await fetch(`${base}/merchant/webhooks?format=json`)).json()) as {
      data: { id: string; type: string; objectId: string; verified: boolean; reason: string | null }[];
    };
    expect(listed.data.slice(0, 3).map((w) => [w.id, w.verified])).toEqual([
      ['msg_3', false],
      ['msg_2', false],
      ['msg_1', true],
    ]);
    expect(listed.data[2]).toMatchObject({ type: 'order.paid', objectId: '4242', reason: null });
    expect(listed.data[0]!.reason).toMatch(/too far from now/);
    const html = await (await fetch(`${base}/merchant/webhooks`)).text();
    expect(html).toContain('data-webhook-id="msg_1" data-verified="true"');
    expect(html).toContain('data-webhook-id="msg_2" data-verified="false"');
  });

  it('refuses webhooks while it has no secret (so paycenter retries later)', async () => {
    sandbox.demoMerchant.useWebhookSecret(() => undefined);
    const res = await post('{}', {
      'webhook-id': 'msg_x',
      'webhook-timestamp': '1',
      'webhook-signature': 'v1,x',
    });
    expect(res.status).toBe(503);
    sandbox.demoMerchant.useWebhookSecret(SECRET);
  });

  it('checks the signed return URL and says whether it verified', async () => {
    sandbox.demoMerchant.useWebhookSecret(SECRET);
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', Buffer.from(SECRET.slice(6), 'base64'))
      .update(`4242.M-1.paid.${ts}`)
      .digest('base64url');
    const query = (s: string, status = 'paid') =>
      `orderId=4242&merchantOrderId=M-1&status=${status}&ts=${ts}&sig=${encodeURIComponent(s)}`;
    const good = await (await fetch(`${base}/merchant/return?${query(sig)}`)).text();
    expect(good).toContain('id="signature" data-verified="true"');
    expect(good).toContain('Thank you — your payment went through');
    expect(good).toContain('id="order-id">4242');
    // The webhook of the same order, received above, is shown with it.
    expect(good).toContain('id="order-webhooks"');

    const forged = await (await fetch(`${base}/merchant/return?${query(sig, 'refunded')}`)).text();
    expect(forged).toContain('id="signature" data-verified="false"');
    expect(forged).toContain('We could not verify this link');
    const missing = await (await fetch(`${base}/merchant/return?orderId=4242`)).text();
    expect(missing).toContain('data-verified="false"');
  });

  it('takes its secret from the option given to createSandbox', async () => {
    let secret: string | undefined;
    const other = createSandbox({ demoMerchant: { webhookSecret: () => secret } });
    const server = Fastify();
    await server.register(other.plugin, { prefix: '/__sandbox' });
    try {
      const body = '{"type":"order.paid","data":{"id":"1"}}';
      const now = new Date();
      const headers = {
        'content-type': 'application/json',
        'webhook-id': 'msg_o',
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': new Webhook(SECRET).sign('msg_o', now, body),
      };
      const before = await server.inject({
        method: 'POST',
        url: '/__sandbox/merchant/webhooks',
        headers,
        payload: body,
      });
      expect(before.statusCode).toBe(503);
      secret = SECRET;
      const after = await server.inject({
        method: 'POST',
        url: '/__sandbox/merchant/webhooks',
        headers,
        payload: body,
      });
      expect(after.statusCode).toBe(200);
      await vi.waitFor(() => expect(other.demoMerchant.webhooks.at(-1)?.verified).toBe(true));
    } finally {
      await server.close();
    }
  });
});
