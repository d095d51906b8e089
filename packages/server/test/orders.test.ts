import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from './helpers/harness.js';

describe.each(backends())('orders on %s', (backend) => {
  let t: TestApp;
  let shop: { id: string; apiKey: string };
  let other: { id: string; apiKey: string };

  beforeAll(async () => {
    t = await startTestApp(backend);
    shop = await t.createApp();
    other = await t.createApp({ name: 'Other shop' });
  });
  afterAll(() => t.close());

  it('creates a waiting order with every field the contract names', async () => {
    const body = newOrder({
      amount: 1999,
      body: 'Longjing, 250 g',
      expireInSeconds: 900,
      notifyUrl: 'https://shop.example/hooks/{channelCode}',
      returnUrl: 'https://shop.example/thanks',
      metadata: { cart: 'c-17', user: 'u-3' },
      userIp: '203.0.113.9',
    });
    const res = await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', body);
    expect(res.statusCode).toBe(201);
    const order = res.json();
    expect(order).toEqual({
      id: expect.stringMatching(/^\d+$/),
      appId: shop.id,
      merchantOrderId: body.merchantOrderId,
      subject: 'A pot of tea',
      body: 'Longjing, 250 g',
      amount: 1999,
      currency: 'CNY',
      status: 'waiting',
      refundedAmount: 0,
      expireAt: new Date(t.clock.now().getTime() + 900_000).toISOString(),
      notifyUrl: 'https://shop.example/hooks/{channelCode}',
      returnUrl: 'https://shop.example/thanks',
      metadata: { cart: 'c-17', user: 'u-3' },
      clientToken: expect.stringMatching(/^[0-9A-Za-z]{32}$/),
      channelCode: null,
      createdAt: t.clock.now().toISOString(),
      paidAt: null,
      closedAt: null,
    });
    const fetched = await t.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}`);
    expect(fetched.statusCode).toBe(200);
    expect(fetched.json()).toEqual(order);
  });

  it('defaults the currency to CNY and the expiry to two hours', async () => {
    const res = await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', newOrder());
    expect(res.json()).toMatchObject({
      currency: 'CNY',
      expireAt: new Date(t.clock.now().getTime() + 7_200_000).toISOString(),
    });
  });

  it('answers a repeated create with the existing order (200), and a changed one with 409 order_conflict', async () => {
    const body = newOrder();
    const first = await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', body);
    const again = await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    for (const change of [{ amount: 1 }, { subject: 'Coffee' }]) {
      const res = await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', { ...body, ...change });
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toMatchObject({ code: 'order_conflict', orderId: first.json().id });
    }
    const rows = await t.runtime.database.db
      .selectFrom('orders')
      .select(['amount', 'subject'])
      .where('merchant_order_id', '=', body.merchantOrderId as string)
      .execute();
    expect(rows).toEqual([{ amount: '1234', subject: 'A pot of tea' }]);
  });

  it('keeps one row under 50 concurrent identical creates', async () => {
    const body = newOrder();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => t.merchant(shop.apiKey, 'POST', '/api/v1/orders', body)),
    );
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1);
    const { n } = await t.runtime.database.db
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('merchant_order_id', '=', body.merchantOrderId as string)
      .executeTakeFirstOrThrow();
    expect(Number(n)).toBe(1);
  });

  it("never shows another app's order", async () => {
    const mine = (await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', newOrder())).json();
    expect((await t.merchant(other.apiKey, 'GET', `/api/v1/orders/${mine.id}`)).statusCode).toBe(404);
    expect((await t.merchant(other.apiKey, 'POST', `/api/v1/orders/${mine.id}/close`)).statusCode).toBe(404);
    const listed = await t.merchant(
      other.apiKey,
      'GET',
      `/api/v1/orders?merchantOrderId=${mine.merchantOrderId}`,
    );
    expect(listed.json()).toEqual({ data: [], hasMore: false });
    // The same merchant order id is free in another app.
    const theirs = await t.merchant(
      other.apiKey,
      'POST',
      '/api/v1/orders',
      newOrder({ merchantOrderId: mine.merchantOrderId }),
    );
    expect(theirs.statusCode).toBe(201);
  });

  it('finds an order by merchantOrderId and pages through the list newest first', async () => {
    const created = [];
    for (let i = 0; i < 3; i++)
      created.push((await t.merchant(other.apiKey, 'POST', '/api/v1/orders', newOrder())).json());
    const byId = await t.merchant(
      other.apiKey,
      'GET',
      `/api/v1/orders?merchantOrderId=${created[1].merchantOrderId}`,
    );
    expect(byId.json()).toEqual({ data: [created[1]], hasMore: false });
    const page1 = (await t.merchant(other.apiKey, 'GET', '/api/v1/orders?limit=2')).json();
    expect(page1.data.map((o: { id: string }) => o.id)).toEqual([created[2].id, created[1].id]);
    expect(page1.hasMore).toBe(true);
    const page2 = (
      await t.merchant(other.apiKey, 'GET', `/api/v1/orders?limit=2&before=${created[1].id}`)
    ).json();
    expect(page2.data[0].id).toBe(created[0].id);
    const closed = (await t.merchant(other.apiKey, 'GET', '/api/v1/orders?status=closed')).json();
    expect(closed.data).toEqual([]);
  });

  it('closes a waiting order and writes order.closed with its notify task in the same transaction', async () => {
    const order = (
      await t.merchant(
        shop.apiKey,
        'POST',
        '/api/v1/orders',
        newOrder({ notifyUrl: 'https://shop.example/n/{channelCode}' }),
      )
    ).json();
    t.clock.advance(60_000);
    const res = await t.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: order.id,
      status: 'closed',
      closedAt: t.clock.now().toISOString(),
    });

    const events = await t.runtime.database.db
      .selectFrom('events')
      .selectAll()
      .where('order_id', '=', order.id)
      .execute();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ app_id: shop.id, type: 'order.closed' });
    expect(events[0]!.payload).toMatchObject({ id: order.id, status: 'closed', amount: order.amount });
    const tasks = await t.runtime.database.db
      .selectFrom('notify_tasks')
      .selectAll()
      .where('event_id', '=', events[0]!.id)
      .execute();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      status: 'pending',
      attempts: 0,
      max_attempts: 9,
      url: 'https://shop.example/n/',
      next_attempt_at: t.clock.now(),
    });

    // Closing again answers the closed order and writes nothing more.
    const again = await t.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(res.json());
    expect(
      await t.runtime.database.db
        .selectFrom('events')
        .select('id')
        .where('order_id', '=', order.id)
        .execute(),
    ).toHaveLength(1);
  });

  it("uses the app's notify URL and its own schedule when the order has neither", async () => {
    const app = await t.createApp({ notifyUrl: 'https://other.example/hook', notifySchedule: [1, 2, 3] });
    const order = (await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder())).json();
    await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    const task = await t.runtime.database.db
      .selectFrom('notify_tasks')
      .innerJoin('events', 'events.id', 'notify_tasks.event_id')
      .select(['notify_tasks.url', 'notify_tasks.max_attempts'])
      .where('events.order_id', '=', order.id)
      .executeTakeFirstOrThrow();
    expect(task).toEqual({ url: 'https://other.example/hook', max_attempts: 4 });
  });

  it('refuses to close a paid order (409 order_paid) and leaves it paid', async () => {
    const order = (await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', newOrder())).json();
    await sql`UPDATE orders SET status = 'paid', paid_at = now() WHERE id = ${order.id}`.execute(
      t.runtime.database.db,
    );
    const res = await t.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('order_paid');
    expect((await t.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}`)).json().status).toBe('paid');
    expect(
      await t.runtime.database.db
        .selectFrom('events')
        .select('id')
        .where('order_id', '=', order.id)
        .execute(),
    ).toEqual([]);
  });

  it('keeps an order waiting when the channel of its open attempt cannot be asked (502 channel_error)', async () => {
    const { wechatPayConfig } = await import('./helpers/harness.js');
    const channel = (
      await t.admin('POST', '/admin-api/channels', {
        appId: shop.id,
        code: 'wx_native',
        config: wechatPayConfig(),
      })
    ).json();
    const order = (await t.merchant(shop.apiKey, 'POST', '/api/v1/orders', newOrder())).json();
    await t.runtime.database.db
      .insertInto('attempts')
      .values({
        order_id: order.id,
        channel_id: channel.id,
        channel_code: 'wx_native',
        no: `T${order.id}x`,
        amount: order.amount,
        created_at: t.clock.now(),
        updated_at: t.clock.now(),
      })
      .execute();
    const res = await t.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe('channel_error');
    expect((await t.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}`)).json().status).toBe(
      'waiting',
    );
  });
});
