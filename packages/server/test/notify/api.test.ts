import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NotifyDispatcher } from '../../src/notify/dispatcher.js';
import { NotifyService } from '../../src/notify/notify.service.js';
import { backends } from '../helpers/backends.js';
import { ADMIN_TOKEN, newOrder, startTestApp, type TestApp } from '../helpers/harness.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import { dispatcherFor, notifyHttp } from './helpers.js';

describe.each(backends())('the notify task API on %s', (backend) => {
  let t: TestApp;
  let http: FastifyInstance;
  let dispatcher: NotifyDispatcher;
  let receiver: Receiver;
  let shop: { id: string; apiKey: string };
  let other: { id: string; apiKey: string };

  const merchant = (apiKey: string, method: 'GET' | 'POST', url: string) =>
    http.inject({ method, url, headers: { authorization: `Bearer ${apiKey}` } });
  const admin = (method: 'GET' | 'POST', url: string, token = ADMIN_TOKEN) =>
    http.inject({ method, url, headers: { authorization: `Bearer ${token}` } });

  /** An order closed through the merchant API: its order.closed event and webhook task. */
  async function closedOrder(app: { apiKey: string }, notifyUrl?: string) {
    const created = await t.merchant(
      app.apiKey,
      'POST',
      '/api/v1/orders',
      newOrder(notifyUrl === undefined ? {} : { notifyUrl }),
    );
    expect(created.statusCode, created.body).toBe(201);
    const order = created.json();
    const closed = await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(closed.statusCode, closed.body).toBe(200);
    return order as { id: string };
  }

  beforeAll(async () => {
    t = await startTestApp(backend);
    receiver = await Receiver.start();
    shop = await t.createApp({ notifyUrl: receiver.url('/shop') });
    other = await t.createApp({
      name: 'Other shop',
      notifyUrl: receiver.url('/other'),
      notifySchedule: [10],
    });
    dispatcher = dispatcherFor(t);
    http = await notifyHttp(t, new NotifyService(t.runtime.database.db, t.clock, dispatcher));
  });
  afterAll(async () => {
    await http.close();
    await dispatcher.close();
    await receiver.close();
    await t.close();
  });

  it("lists an order's webhook tasks with every field, and finds them by event", async () => {
    const order = await closedOrder(shop, receiver.url('/orders/{channelCode}/closed'));
    const res = await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks?orderId=${order.id}`);
    expect(res.statusCode, res.body).toBe(200);
    const { data, hasMore } = res.json();
    expect(hasMore).toBe(false);
    expect(data).toEqual([
      {
        id: expect.stringMatching(/^\d+$/),
        appId: shop.id,
        eventId: expect.stringMatching(/^\d+$/),
        eventType: 'order.closed',
        orderId: order.id,
        refundId: null,
        url: receiver.url('/orders//closed'),
        status: 'pending',
        attempts: 0,
        maxAttempts: 9,
        nextAttemptAt: t.clock.now().toISOString(),
        lastError: null,
        deliveredAt: null,
        createdAt: t.clock.now().toISOString(),
        updatedAt: t.clock.now().toISOString(),
      },
    ]);
    const byEvent = await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks?eventId=${data[0].eventId}`);
    expect(byEvent.json().data).toEqual(data);
    await dispatcher.drain();
  });

  it('shows a task with the log of its tries; retries it; refuses to retry a delivered one (409)', async () => {
    receiver.respond = () => ({ status: 500, body: 'oops' });
    const order = await closedOrder(shop);
    await dispatcher.drain();
    const [task] = (await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks?orderId=${order.id}`)).json()
      .data;
    const detail = await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks/${task.id}`);
    expect(detail.statusCode).toBe(200);
    expect(detail.json()).toMatchObject({
      id: task.id,
      status: 'pending',
      attempts: 1,
      lastError: 'HTTP 500',
      nextAttemptAt: new Date(t.clock.now().getTime() + 15_000).toISOString(),
      logs: [
        {
          id: expect.stringMatching(/^\d+$/),
          attemptNo: 1,
          httpStatus: 500,
          responseExcerpt: 'oops',
          error: 'HTTP 500',
          durationMs: expect.any(Number),
          createdAt: t.clock.now().toISOString(),
        },
      ],
    });

    // A pending task is tried now rather than in 15 s.
    receiver.respond = () => ({ status: 200, body: '{"code":"SUCCESS"}' });
    const retried = await merchant(shop.apiKey, 'POST', `/api/v1/notify-tasks/${task.id}/retry`);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toMatchObject({
      status: 'pending',
      attempts: 1,
      nextAttemptAt: t.clock.now().toISOString(),
    });
    expect(await dispatcher.drain()).toBe(1);
    const delivered = (await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks/${task.id}`)).json();
    expect(delivered).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      nextAttemptAt: null,
      lastError: null,
      deliveredAt: t.clock.now().toISOString(),
    });
    expect(delivered.logs.map((l: { httpStatus: number }) => l.httpStatus)).toEqual([500, 200]);

    const again = await merchant(shop.apiKey, 'POST', `/api/v1/notify-tasks/${task.id}/retry`);
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: 'notify_task_delivered', taskId: task.id });
    receiver.respond = () => ({ status: 200, body: 'SUCCESS' });
  });

  it("never shows or retries another app's task (404)", async () => {
    const order = await closedOrder(shop);
    const [task] = (await merchant(shop.apiKey, 'GET', `/api/v1/notify-tasks?orderId=${order.id}`)).json()
      .data;
    expect((await merchant(other.apiKey, 'GET', `/api/v1/notify-tasks/${task.id}`)).statusCode).toBe(404);
    const retry = await merchant(other.apiKey, 'POST', `/api/v1/notify-tasks/${task.id}/retry`);
    expect(retry.statusCode).toBe(404);
    expect(retry.json().error.code).toBe('not_found');
    expect((await merchant(other.apiKey, 'GET', `/api/v1/notify-tasks?orderId=${order.id}`)).json()).toEqual({
      data: [],
      hasMore: false,
    });
    expect((await merchant(shop.apiKey, 'GET', '/api/v1/notify-tasks/99999999')).statusCode).toBe(404);
    expect((await merchant(shop.apiKey, 'GET', '/api/v1/notify-tasks/abc')).statusCode).toBe(404);
    const bad = await merchant(shop.apiKey, 'GET', '/api/v1/notify-tasks?orderId=x1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'invalid_request', field: 'orderId' });
    expect((await http.inject({ method: 'GET', url: '/api/v1/notify-tasks' })).statusCode).toBe(401);
    await dispatcher.drain();
  });

  it('pages through the tasks of an app, newest first', async () => {
    for (let i = 0; i < 3; i++) await closedOrder(other);
    const first = (await merchant(other.apiKey, 'GET', '/api/v1/notify-tasks?limit=2')).json();
    expect(first.data).toHaveLength(2);
    expect(first.hasMore).toBe(true);
    const rest = (
      await merchant(other.apiKey, 'GET', `/api/v1/notify-tasks?limit=2&before=${first.data[1].id}`)
    ).json();
    const ids = [...first.data, ...rest.data].map((task: { id: string }) => BigInt(task.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a > b ? -1 : 1)));
    expect(ids.length).toBeGreaterThanOrEqual(3);
    await dispatcher.drain();
  });

  it('lets the admin list tasks across apps by status, app and date, and retry a failed one', async () => {
    receiver.respond = () => ({ status: 404, body: 'no such hook' });
    const order = await closedOrder(other);
    await dispatcher.drain();
    t.clock.advance(10_000);
    await dispatcher.drain();
    const [task] = (await merchant(other.apiKey, 'GET', `/api/v1/notify-tasks?orderId=${order.id}`)).json()
      .data;
    expect(task).toMatchObject({ status: 'failed', attempts: 2, maxAttempts: 2, nextAttemptAt: null });

    const failed = await admin('GET', `/admin-api/notify-tasks?status=failed&appId=${other.id}`);
    expect(failed.statusCode, failed.body).toBe(200);
    expect(failed.json().data.map((x: { id: string }) => x.id)).toContain(task.id);
    expect(
      failed
        .json()
        .data.every((x: { status: string; appId: string }) => x.status === 'failed' && x.appId === other.id),
    ).toBe(true);
    const createdAt = new Date(task.createdAt).getTime();
    const inRange = await admin(
      'GET',
      `/admin-api/notify-tasks?from=${new Date(createdAt).toISOString()}&to=${new Date(createdAt + 1).toISOString()}`,
    );
    expect(inRange.json().data.map((x: { id: string }) => x.id)).toContain(task.id);
    const later = await admin('GET', `/admin-api/notify-tasks?from=${new Date(createdAt + 1).toISOString()}`);
    expect(later.json().data.map((x: { id: string }) => x.id)).not.toContain(task.id);
    expect((await admin('GET', '/admin-api/notify-tasks?from=yesterday')).statusCode).toBe(400);
    expect((await admin('GET', '/admin-api/notify-tasks?status=lost')).statusCode).toBe(400);
    expect(
      (await admin('GET', '/admin-api/notify-tasks', 'adm_wrong_token_0123456789abcdefghijk')).statusCode,
    ).toBe(401);

    const detail = await admin('GET', `/admin-api/notify-tasks/${task.id}`);
    expect(detail.json().logs.map((l: { httpStatus: number }) => l.httpStatus)).toEqual([404, 404]);

    receiver.respond = () => ({ status: 200, body: 'SUCCESS' });
    const retried = await admin('POST', `/admin-api/notify-tasks/${task.id}/retry`);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toMatchObject({ status: 'pending', attempts: 2, maxAttempts: 3 });
    expect(await dispatcher.drain()).toBe(1);
    expect((await admin('GET', `/admin-api/notify-tasks/${task.id}`)).json()).toMatchObject({
      status: 'succeeded',
      attempts: 3,
    });
    expect((await admin('POST', `/admin-api/notify-tasks/${task.id}/retry`)).statusCode).toBe(409);
    expect((await admin('POST', '/admin-api/notify-tasks/99999999/retry')).statusCode).toBe(404);
  });
});
