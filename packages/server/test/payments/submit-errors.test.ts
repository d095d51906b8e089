import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from '../helpers/harness.js';

describe.each(backends())('submit refusals on %s', (backend) => {
  let t: TestApp;
  let app: { id: string; apiKey: string };
  let merchants: { wechatpay: Record<string, unknown>; alipay: Record<string, unknown> };

  beforeAll(async () => {
    t = await startTestApp(backend, {}, { listen: true, clock: { now: () => new Date() } });
    merchants = (await t.runtime.http.inject({ method: 'POST', url: '/__sandbox/control/merchants' })).json();
    app = await t.createApp();
    const enable = (code: string, config: Record<string, unknown>) =>
      t.admin('POST', '/admin-api/channels', { appId: app.id, code, config });
    await enable('wx_native', merchants.wechatpay);
    await enable('wx_jsapi', merchants.wechatpay);
    await enable('wx_h5', merchants.wechatpay);
    await enable('alipay_qr', merchants.alipay);
    await enable('alipay_bar', merchants.alipay);
    // A WeChat channel whose server cannot be reached.
    await enable('wx_app', { ...merchants.wechatpay, baseUrl: 'http://127.0.0.1:9' });
    const disabled = (await enable('alipay_pc', merchants.alipay)).json();
    await t.admin('PATCH', `/admin-api/channels/${disabled.id}`, { status: 'disabled' });
  });
  afterAll(() => t.close());

  const order = async (overrides: Record<string, unknown> = {}) =>
    (await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder(overrides))).json() as { id: string };
  const submit = (orderId: string, body: Record<string, unknown>) =>
    t.merchant(app.apiKey, 'POST', `/api/v1/orders/${orderId}/submit`, body);
  const attemptCount = async (orderId: string) =>
    (
      await t.runtime.database.db
        .selectFrom('attempts')
        .select('id')
        .where('order_id', '=', orderId)
        .execute()
    ).length;

  it.each([
    ['a channel the app has not enabled', { channelCode: 'alipay_wap' }, 400, 'channel_unavailable'],
    ['a disabled channel', { channelCode: 'alipay_pc' }, 400, 'channel_unavailable'],
    ['an unknown channel code', { channelCode: 'paypal' }, 400, 'invalid_request'],
    ['wx_jsapi without an openid', { channelCode: 'wx_jsapi' }, 400, 'invalid_request'],
    ['alipay_bar without an auth code', { channelCode: 'alipay_bar' }, 400, 'invalid_request'],
    [
      'alipay_bar with a malformed auth code',
      { channelCode: 'alipay_bar', channelExtras: { authCode: '12ab' } },
      400,
      'invalid_request',
    ],
    ['wx_h5 for an order without the payer IP', { channelCode: 'wx_h5' }, 400, 'invalid_request'],
    [
      'an unknown extra',
      { channelCode: 'wx_native', channelExtras: { coupon: 'x' } },
      400,
      'invalid_request',
    ],
  ])('refuses %s, writing no attempt', async (_name, body, status, code) => {
    const o = await order();
    const res = await submit(o.id, body);
    expect([res.statusCode, res.json().error.code]).toEqual([status, code]);
    expect(await attemptCount(o.id)).toBe(0);
  });

  it('refuses paid, closed and expired orders with 409', async () => {
    const paid = await order();
    await sql`UPDATE orders SET status = 'paid', paid_at = now() WHERE id = ${paid.id}`.execute(
      t.runtime.database.db,
    );
    const closed = await order();
    await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${closed.id}/close`);
    const expired = await order();
    await sql`UPDATE orders SET expire_at = now() - interval '1 second' WHERE id = ${expired.id}`.execute(
      t.runtime.database.db,
    );
    for (const [o, code] of [
      [paid, 'order_paid'],
      [closed, 'order_closed'],
      [expired, 'order_closed'],
    ] as const) {
      const res = await submit(o.id, { channelCode: 'wx_native' });
      expect([res.statusCode, res.json().error.code]).toEqual([409, code]);
      expect(await attemptCount(o.id)).toBe(0);
    }
    expect((await submit('999999', { channelCode: 'wx_native' })).statusCode).toBe(404);
  });

  it("answers 502 channel_error with the provider's code when the provider refuses, leaving the attempt failed", async () => {
    // Alipay's ceiling is 100,000,000 yuan; ours is higher.
    const o = await order({ amount: 50_000_000_000 });
    const res = await submit(o.id, { channelCode: 'alipay_qr' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toMatchObject({ code: 'channel_error', providerCode: 'ACQ.TOTAL_FEE_EXCEED' });
    const attempts = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${o.id}/attempts`)).json().data;
    expect(attempts).toEqual([
      expect.objectContaining({ status: 'failed', failureCode: 'ACQ.TOTAL_FEE_EXCEED' }),
    ]);
    expect((await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${o.id}`)).json().status).toBe('waiting');
  });

  it('answers 502 channel_error when the provider cannot be reached, leaving the attempt failed', async () => {
    const o = await order();
    const res = await submit(o.id, { channelCode: 'wx_app' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toMatchObject({ code: 'channel_error', providerCode: 'NETWORK_ERROR' });
    const attempts = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${o.id}/attempts`)).json().data;
    expect(attempts).toEqual([expect.objectContaining({ status: 'failed', failureCode: 'NETWORK_ERROR' })]);
  });

  it('gives every submit a fresh attempt number, and a retry after a failure works', async () => {
    const o = await order();
    const first = (await submit(o.id, { channelCode: 'wx_native' })).json();
    const second = (await submit(o.id, { channelCode: 'alipay_qr' })).json();
    expect(first.no).not.toBe(second.no);
    expect([first.status, second.status]).toEqual(['waiting', 'waiting']);
    expect(await attemptCount(o.id)).toBe(2);
  });

  it('pays a bar-code order at once, and leaves one waiting when the payer must confirm', async () => {
    const now = await order();
    const paid = (
      await submit(now.id, { channelCode: 'alipay_bar', channelExtras: { authCode: '281234567890123456' } })
    ).json();
    expect(paid).toMatchObject({ status: 'paid', displayMode: 'none' });
    expect((await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${now.id}`)).json().status).toBe('paid');
    const later = await order();
    // The sandbox's marker: an auth code ending in 0003 waits for the payer (Alipay code 10003).
    const waiting = (
      await submit(later.id, { channelCode: 'alipay_bar', channelExtras: { authCode: '281234567890120003' } })
    ).json();
    expect(waiting).toMatchObject({ status: 'waiting', displayMode: 'none' });
  });
});
