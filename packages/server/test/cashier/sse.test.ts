import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyReturnUrl } from '../../src/public/return-url.js';
import { backends } from '../helpers/backends.js';
import {
  type CashierApp,
  type OrderJson,
  payInSandbox,
  type Shop,
  SseClient,
  startCashierApp,
  submit,
} from './helpers.js';

const HEARTBEAT_MS = 150;

describe.each(backends())('order status as Server-Sent Events on %s', (backend) => {
  let app: CashierApp;
  let shop: Shop;
  const open: SseClient[] = [];

  beforeAll(async () => {
    app = await startCashierApp(backend, { settings: { heartbeatMs: HEARTBEAT_MS } });
    shop = await app.createShop({ codes: ['wx_native', 'alipay_qr'] });
  });
  afterAll(async () => {
    for (const client of open) client.close();
    await app.close();
  });

  const events = async (order: OrderJson, headers: Record<string, string> = {}, query = '') => {
    const client = await SseClient.open(
      `${app.origin}/api/v1/public/orders/${order.id}/events?token=${order.clientToken}${query}`,
      headers,
    );
    open.push(client);
    return client;
  };

  const submitted = async (order: OrderJson) =>
    ((await (await submit(app, order, { channelCode: 'wx_native' })).json()) as { attempt: { no: string } })
      .attempt.no;

  it('sends the current status at once, then heartbeats while nothing changes', async () => {
    const order = await shop.createOrder();
    const stream = await events(order);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['cache-control']).toBe('no-store');
    await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 2000, interval: 10 });
    expect(stream.events[0]).toMatchObject({ id: '0-waiting', event: 'status' });
    expect(stream.json(0)).toMatchObject({ id: order.id, status: 'waiting', amount: 1234 });
    expect(stream.retries).toEqual([3000]);
    await vi.waitFor(
      () => expect(stream.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThanOrEqual(2),
      {
        timeout: HEARTBEAT_MS * 10,
        interval: 20,
      },
    );
    expect(stream.events).toHaveLength(1);
    expect(stream.isEnded).toBe(false);
    stream.close();
  });

  it('sends the payment as it happens, with the signed return URL, then ends the stream', async () => {
    const order = await shop.createOrder();
    const no = await submitted(order);
    const stream = await events(order);
    await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 2000, interval: 10 });
    const paidAt = Date.now();
    await payInSandbox(app, no);
    await stream.ended;
    const latency = Date.now() - paidAt;
    expect(stream.events.map((e) => e.id)).toEqual(['0-waiting', '2-paid']);
    const paid = stream.json(1);
    expect(paid).toMatchObject({
      id: order.id,
      status: 'paid',
      channelCode: 'wx_native',
      paidAt: expect.any(String),
    });
    expect(verifyReturnUrl(String(paid.returnUrl), shop.webhookSecret, { now: app.clock.now() }).valid).toBe(
      true,
    );
    // Callback, apply, announce, re-read and send: well within the second the cashier promises.
    expect(latency).toBeLessThan(1000);
  });

  it('builds a status once for every browser watching the order, and ends each stream with it', async () => {
    const order = await shop.createOrder();
    const no = await submitted(order);
    const streams = await Promise.all(Array.from({ length: 25 }, () => events(order)));
    for (const stream of streams) {
      await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 2000, interval: 10 });
    }
    const view = vi.spyOn(app.live.orders, 'view');
    try {
      await payInSandbox(app, no);
      await Promise.all(streams.map((stream) => stream.ended));
      for (const stream of streams) {
        expect(stream.events.map((e) => e.id)).toEqual(['0-waiting', '2-paid']);
        expect(stream.events[1]!.data).toBe(streams[0]!.events[1]!.data);
      }
      const paidViews = view.mock.calls.filter(([row]) => row.id === order.id && row.status === 'paid');
      expect(paidViews).toHaveLength(1);
    } finally {
      view.mockRestore();
    }
  });

  it('reads the app once for a burst of final statuses of one app', async () => {
    const orders = await Promise.all(Array.from({ length: 12 }, () => shop.createOrder()));
    const rows = await Promise.all(orders.map((o) => app.live.orders.find(o.id)));
    const apps = vi.spyOn(app.runtime.services.apps, 'get');
    try {
      const views = await Promise.all(rows.map((row) => app.live.orders.view({ ...row!, status: 'closed' })));
      expect(apps).toHaveBeenCalledTimes(1);
      for (const view of views) {
        expect(verifyReturnUrl(view.returnUrl!, shop.webhookSecret, { now: app.clock.now() }).valid).toBe(
          true,
        );
      }
      // Nothing is kept: the next view reads the app again.
      await app.live.orders.view({ ...rows[0]!, status: 'closed' });
      expect(apps).toHaveBeenCalledTimes(2);
    } finally {
      apps.mockRestore();
    }
  });

  it('honours Last-Event-ID: only what is newer, and 204 once the final status was seen', async () => {
    const order = await shop.createOrder();
    const no = await submitted(order);
    const resumed = await events(order, { 'last-event-id': '0-waiting' });
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 2));
    // Already known: no repeat of the waiting status, only heartbeats.
    expect(resumed.events).toEqual([]);
    expect(resumed.comments).toContain('heartbeat');
    await payInSandbox(app, no);
    await resumed.ended;
    expect(resumed.events.map((e) => e.id)).toEqual(['2-paid']);

    // A reconnect after the final status: 204, which tells EventSource to stop reconnecting.
    const done = await events(order, { 'last-event-id': '2-paid' });
    await done.ended;
    expect(done.status).toBe(204);
    expect(done.events).toEqual([]);
    // EventSource polyfills send it in the query.
    const polyfill = await events(order, {}, '&lastEventId=2-paid');
    await polyfill.ended;
    expect(polyfill.status).toBe(204);
    // Without (or with a foreign) Last-Event-ID: the final status, then the end.
    for (const headers of [{}, { 'last-event-id': 'garbage' }] as Record<string, string>[]) {
      const late = await events(order, headers);
      await late.ended;
      expect(late.status).toBe(200);
      expect(late.events.map((e) => e.id)).toEqual(['2-paid']);
    }
  });

  it('sends a close by the merchant, and ends', async () => {
    const order = await shop.createOrder();
    const stream = await events(order);
    await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 2000, interval: 10 });
    const closed = await app.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(closed.status).toBe(200);
    await stream.ended;
    expect(stream.events.map((e) => e.id)).toEqual(['0-waiting', '1-closed']);
    expect(stream.json(1)).toMatchObject({
      status: 'closed',
      returnUrl: expect.stringContaining('status=closed'),
    });
  });

  it('refuses a wrong token with 404 and no stream', async () => {
    const order = await shop.createOrder();
    const other = await shop.createOrder();
    const stream = await SseClient.open(
      `${app.origin}/api/v1/public/orders/${order.id}/events?token=${other.clientToken}`,
    );
    await stream.ended;
    expect(stream.status).toBe(404);
    expect(stream.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(stream.body)).toMatchObject({
      error: { code: 'not_found', message: 'order not found' },
    });
  });

  it('ends the stream of an order long past its expiry, after telling its status', async () => {
    const order = await shop.createOrder({ expireInSeconds: 60 });
    app.clock.advance(61_000 + app.live.settings.expiredGraceMs);
    try {
      const stream = await events(order);
      await stream.ended;
      expect(stream.events.map((e) => e.id)).toEqual(['0-waiting']);
      const again = await events(order, { 'last-event-id': '0-waiting' });
      await again.ended;
      expect(again.status).toBe(204);
    } finally {
      app.clock.advance(-(61_000 + app.live.settings.expiredGraceMs));
    }
  });

  it('forgets a stream when its browser leaves', async () => {
    const order = await shop.createOrder();
    const before = app.live.feed.watching.watchers;
    const stream = await events(order);
    await vi.waitFor(() => expect(app.live.feed.watching.watchers).toBe(before + 1), {
      timeout: 2000,
      interval: 10,
    });
    stream.close();
    await vi.waitFor(() => expect(app.live.feed.watching.watchers).toBe(before), {
      timeout: 2000,
      interval: 10,
    });
  });
});

describe('closing a server with open streams', () => {
  it('ends the streams instead of waiting for them', async () => {
    const app = await startCashierApp('pglite');
    const shop = await app.createShop({ codes: ['wx_native'] });
    const order = await shop.createOrder();
    const stream = await SseClient.open(
      `${app.origin}/api/v1/public/orders/${order.id}/events?token=${order.clientToken}`,
    );
    await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 2000, interval: 10 });
    const started = Date.now();
    await app.close();
    await stream.ended;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
