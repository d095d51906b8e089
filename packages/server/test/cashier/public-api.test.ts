import { verifyReturn } from 'paycenter-sandbox';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { AppError } from '../../src/errors.js';
import { PublicOrderService } from '../../src/public/public-order.service.js';
import { verifyReturnUrl } from '../../src/public/return-url.js';
import { backends } from '../helpers/backends.js';
import {
  type CashierApp,
  type OrderJson,
  payInSandbox,
  type Shop,
  startCashierApp,
  submit,
} from './helpers.js';

const statusUrl = (app: CashierApp, order: { id: string }, token: string) =>
  `${app.origin}/api/v1/public/orders/${order.id}?token=${encodeURIComponent(token)}`;

describe.each(backends())('the public order API on %s', (backend) => {
  let app: CashierApp;
  let shop: Shop;

  beforeAll(async () => {
    app = await startCashierApp(backend);
    shop = await app.createShop({ codes: ['wx_native', 'alipay_qr', 'alipay_pc', 'wx_h5', 'wx_app'] });
  });
  afterAll(() => app.close());

  const status = async (order: OrderJson) => {
    const res = await fetch(statusUrl(app, order, order.clientToken));
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  };

  it('shows the paying browser its order, never cached', async () => {
    const order = await shop.createOrder({ amount: 1234, subject: 'Tea for two' });
    const res = await fetch(statusUrl(app, order, order.clientToken));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({
      id: order.id,
      status: 'waiting',
      amount: 1234,
      currency: 'CNY',
      subject: 'Tea for two',
      expireAt: order.expireAt,
      paidAt: null,
      channelCode: null,
    });
  });

  it('answers a wrong, missing or foreign token exactly like an unknown order: 404', async () => {
    const order = await shop.createOrder();
    const other = await shop.createOrder();
    const unknown = await fetch(statusUrl(app, { id: '999999999' }, order.clientToken));
    const answers = await Promise.all([
      // One character changed (never to itself: a token ending in x would stay valid).
      fetch(
        statusUrl(
          app,
          order,
          `${order.clientToken.slice(0, -1)}${order.clientToken.endsWith('x') ? 'y' : 'x'}`,
        ),
      ),
      fetch(statusUrl(app, order, other.clientToken)),
      fetch(`${app.origin}/api/v1/public/orders/${order.id}`),
      fetch(statusUrl(app, { id: 'not-an-id' }, order.clientToken)),
      // One past the largest bigint: refused before it reaches SQL.
      fetch(statusUrl(app, { id: '9223372036854775808' }, order.clientToken)),
      unknown,
    ]);
    const bodies = [];
    for (const res of answers) {
      expect(res.status).toBe(404);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { error: { code: string; message: string } };
      bodies.push({ code: body.error.code, message: body.error.message });
    }
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(bodies[0]).toEqual({ code: 'not_found', message: 'order not found' });
    for (const path of ['submit', 'sync']) {
      const res = await fetch(
        `${app.origin}/api/v1/public/orders/${order.id}/${path}?token=${other.clientToken}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ channelCode: 'wx_native' }),
        },
      );
      expect(res.status).toBe(404);
    }
  });

  it('submits to an enabled channel: a QR code as SVG, leading to the sandbox wallet', async () => {
    const order = await shop.createOrder();
    const res = await submit(app, order, { channelCode: 'wx_native' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as {
      attempt: { no: string; displayMode: string; displayContent: string; status: string };
      qrSvg: string;
      walletUrl: string;
    };
    expect(body.attempt).toMatchObject({ displayMode: 'qr_code', status: 'waiting' });
    expect(body.attempt.displayContent).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect(body.qrSvg).toMatch(/^<svg [^>]*viewBox=/);
    expect(body.walletUrl).toBe(
      `${app.origin}/__sandbox/wallet/${body.attempt.no}?return=${encodeURIComponent(`/cashier/${order.id}?token=${order.clientToken}`)}`,
    );
    const attempts = await app.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}/attempts`);
    expect(((await attempts.json()) as { data: unknown[] }).data).toHaveLength(1);
  });

  it('applies the merchant submit rules, and offers only what a browser can pay with', async () => {
    const order = await shop.createOrder();
    const disabled = await submit(app, order, { channelCode: 'alipay_wap' });
    expect(disabled.status).toBe(400);
    expect(((await disabled.json()) as { error: { code: string } }).error.code).toBe('channel_unavailable');
    // wx_app is enabled for the app, but needs the WeChat app's SDK, not a browser.
    const app_ = await submit(app, order, { channelCode: 'wx_app' });
    expect(app_.status).toBe(400);
    const extra = await submit(app, order, { channelCode: 'wx_native', channelExtras: { openid: 'x' } });
    expect(extra.status).toBe(400);
    const paid = await shop.createOrder();
    const first = (await (await submit(app, paid, { channelCode: 'alipay_qr' })).json()) as {
      attempt: { no: string };
    };
    await payInSandbox(app, first.attempt.no);
    await vi.waitFor(async () => expect((await status(paid)).status).toBe('paid'), {
      timeout: 5000,
      interval: 20,
    });
    const again = await submit(app, paid, { channelCode: 'wx_native' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('order_paid');
  });

  it('fills in what the cashier knows: the payer’s IP for wx_h5, and the way back to the cashier', async () => {
    const order = await shop.createOrder();
    const res = await submit(app, order, { channelCode: 'wx_h5' }, { 'user-agent': 'Mozilla/5.0 (iPhone)' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { attempt: { displayMode: string; displayContent: string } };
    expect(body.attempt.displayMode).toBe('url');
    const url = new URL(body.attempt.displayContent);
    expect(url.searchParams.get('redirect_url')).toBe(
      `${app.origin}/cashier/${order.id}?token=${order.clientToken}`,
    );

    const pc = await shop.createOrder();
    const page = (await (await submit(app, pc, { channelCode: 'alipay_pc' })).json()) as {
      attempt: { displayContent: string };
    };
    const gateway = new URL(page.attempt.displayContent);
    expect(gateway.searchParams.get('return_url')).toBe(
      `${app.origin}/cashier/${pc.id}?token=${pc.clientToken}`,
    );
  });

  it('"I have paid" asks the channel when the callback is lost, at most once per 5 s per order', async () => {
    const order = await shop.createOrder();
    const submitted = (await (await submit(app, order, { channelCode: 'wx_native' })).json()) as {
      attempt: { no: string };
    };
    const drop = await fetch(`${app.origin}/__sandbox/control/callbacks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'drop', count: 1 }),
    });
    expect(drop.status).toBe(200);
    await payInSandbox(app, submitted.attempt.no);
    await app.runtime.sandbox!.callbacks.idle();
    expect((await status(order)).status).toBe('waiting');

    const sync = (path: string) =>
      fetch(`${app.origin}/api/v1/public/orders/${order.id}/${path}?token=${order.clientToken}`, {
        method: 'POST',
      });
    const first = await sync('sync');
    expect(first.status).toBe(200);
    const synced = (await first.json()) as { order: Record<string, unknown>; sync: Record<string, number> };
    expect(synced.sync).toEqual({ queried: 1, applied: 1, failed: 0 });
    expect(synced.order).toMatchObject({ id: order.id, status: 'paid', channelCode: 'wx_native' });

    const second = await sync('sync');
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    app.clock.advance(5000);
    const third = await sync('sync');
    expect(third.status).toBe(200);
    // Nothing waits any more: nothing is asked.
    expect(((await third.json()) as { sync: Record<string, number> }).sync.queried).toBe(0);
  });

  it('"I have paid" is throttled across instances: one press per order per 5 s whichever instance takes it', async () => {
    const order = await shop.createOrder();
    await submit(app, order, { channelCode: 'wx_native' });
    const services = app.runtime.services;
    // Another instance: its own memory, the same database, and a clock of its own that stands still
    // (the app's runs on in real time), so its arithmetic is exact.
    const frozen = new ManualClock(app.clock.now());
    const elsewhere = new PublicOrderService({
      db: app.runtime.database.db,
      apps: services.apps,
      channels: services.channels,
      submissions: services.submissions,
      clock: frozen,
      publicUrl: () => app.origin,
    });
    const first = await elsewhere.sync(order.id, order.clientToken);
    expect(first.sync).toEqual({ queried: 1, applied: 0, failed: 0 });

    const here = await fetch(
      `${app.origin}/api/v1/public/orders/${order.id}/sync?token=${order.clientToken}`,
      { method: 'POST' },
    );
    expect(here.status).toBe(429);
    expect(Number(here.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(here.headers.get('retry-after'))).toBeLessThanOrEqual(5);
    expect(((await here.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    frozen.advance(3000);
    const later = (await elsewhere.sync(order.id, order.clientToken).catch((e: unknown) => e)) as AppError;
    expect([later.code, later.details]).toEqual(['rate_limited', { retryAfterMs: 2000 }]);
    // A wrong token takes no turn and says nothing of one.
    frozen.advance(2000);
    await expect(elsewhere.sync(order.id, `${order.clientToken}x`)).rejects.toMatchObject({
      code: 'not_found',
    });
    app.clock.advance(5000);
    const afterWait = await fetch(
      `${app.origin}/api/v1/public/orders/${order.id}/sync?token=${order.clientToken}`,
      { method: 'POST' },
    );
    expect(afterWait.status).toBe(200);
  });

  it('keeps the client token and the webhook secret out of the log, though the token rides in URLs sent to the channels', async () => {
    const order = await shop.createOrder();
    const token = order.clientToken;
    await (await fetch(`${app.origin}/cashier/${order.id}?token=${token}`)).text();
    await (await fetch(statusUrl(app, order, token))).text();
    await (await fetch(statusUrl(app, order, `${token}x`))).text();
    for (const code of ['alipay_pc', 'wx_h5', 'wx_native']) {
      const res = await submit(app, order, { channelCode: code }, { 'user-agent': 'Mozilla/5.0 (iPhone)' });
      expect(res.status).toBe(201);
    }
    const synced = await fetch(`${app.origin}/api/v1/public/orders/${order.id}/sync?token=${token}`, {
      method: 'POST',
    });
    expect(synced.status).toBe(200);
    expect(app.logs()).toContain(`/api/v1/public/orders/${order.id}/sync`);
    expect(app.logs()).not.toContain(token);
    // Nor the secret that signs the way back (and the webhooks).
    expect(app.logs()).not.toContain(shop.webhookSecret.slice('whsec_'.length));
  });

  it('gives a final order its return URL — the order’s, else the app’s — signed with the webhook secret', async () => {
    const order = await shop.createOrder();
    const own = await shop.createOrder({ returnUrl: 'https://shop.example/thanks?from=paycenter#top' });
    for (const o of [order, own]) {
      const submitted = (await (await submit(app, o, { channelCode: 'alipay_qr' })).json()) as {
        attempt: { no: string };
      };
      await payInSandbox(app, submitted.attempt.no);
    }
    await vi.waitFor(async () => expect((await status(own)).status).toBe('paid'), {
      timeout: 5000,
      interval: 20,
    });
    await vi.waitFor(async () => expect((await status(order)).status).toBe('paid'), {
      timeout: 5000,
      interval: 20,
    });

    const appReturn = new URL(String((await status(order)).returnUrl));
    expect(`${appReturn.origin}${appReturn.pathname}`).toBe(`${app.origin}/__sandbox/merchant/return`);
    expect(Object.fromEntries(appReturn.searchParams)).toMatchObject({
      orderId: order.id,
      merchantOrderId: order.merchantOrderId,
      status: 'paid',
    });
    expect(appReturn.searchParams.get('sig')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const check = verifyReturnUrl(appReturn, shop.webhookSecret, { now: app.clock.now() });
    expect(check.valid).toBe(true);
    // The merchant's side, written independently in the sandbox, agrees.
    expect(
      verifyReturn(shop.webhookSecret, Object.fromEntries(appReturn.searchParams), app.clock.now()),
    ).toEqual({
      verified: true,
    });
    // A tampered status does not verify.
    appReturn.searchParams.set('status', 'closed');
    expect(verifyReturnUrl(appReturn, shop.webhookSecret, { now: app.clock.now() })).toEqual({
      valid: false,
      reason: 'bad_signature',
    });

    const ownReturn = new URL(String((await status(own)).returnUrl));
    expect(ownReturn.origin + ownReturn.pathname).toBe('https://shop.example/thanks');
    expect(ownReturn.searchParams.get('from')).toBe('paycenter');
    expect(ownReturn.hash).toBe('#top');
    expect(verifyReturnUrl(ownReturn, shop.webhookSecret, { now: app.clock.now() }).valid).toBe(true);
    // Waiting orders carry no return URL.
    const waiting = await shop.createOrder();
    expect((await status(waiting)).returnUrl).toBeUndefined();
  });
});
