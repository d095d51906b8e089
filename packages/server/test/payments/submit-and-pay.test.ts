import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_CODES, type ChannelCode } from '../../src/channels/channel-codes.js';
import { backends } from '../helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from '../helpers/harness.js';

/** What the paying user does at the provider, per product, before the sandbox can take the money. */
async function openAtProvider(code: ChannelCode, attempt: { displayContent: string }, sandboxBase: string) {
  if (code === 'alipay_pc' || code === 'alipay_wap') {
    // Page payments exist at Alipay only once the browser opens the cashier.
    const page = await fetch(attempt.displayContent);
    expect(page.status).toBe(200);
  }
  if (code === 'alipay_app') {
    const opened = await fetch(`${sandboxBase}/alipay/app-pay`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: attempt.displayContent,
    });
    expect(opened.status).toBe(200);
  }
}

const EXTRAS: Partial<Record<ChannelCode, Record<string, string>>> = {
  wx_jsapi: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  wx_lite: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  alipay_bar: { authCode: '281234567890123456' },
};

const DISPLAY: Record<ChannelCode, string> = {
  wx_native: 'qr_code',
  wx_jsapi: 'jsapi',
  wx_lite: 'jsapi',
  wx_h5: 'url',
  wx_app: 'app',
  alipay_pc: 'url',
  alipay_wap: 'url',
  alipay_qr: 'qr_code',
  alipay_app: 'app',
  alipay_bar: 'none',
};

describe.each(backends())('submit and pay through the sandbox on %s', (backend) => {
  let t: TestApp;
  let app: { id: string; apiKey: string };
  let base: string;

  beforeAll(async () => {
    t = await startTestApp(
      backend,
      { PAYCENTER_SANDBOX_TIME_SCALE: '0.001' },
      { listen: true, clock: { now: () => new Date() } },
    );
    base = `${t.runtime.http.listeningOrigin}/__sandbox`;
    app = await t.createApp();
    await t.enableSandboxChannels(app.id, CHANNEL_CODES);
  });
  afterAll(() => t.close());

  it.each(CHANNEL_CODES)(
    '%s: create → submit → pay in the sandbox → paid, with order.paid and its task',
    async (code) => {
      const order = (
        await t.merchant(
          app.apiKey,
          'POST',
          '/api/v1/orders',
          newOrder({ userIp: '203.0.113.7', amount: 2345 }),
        )
      ).json();
      const submitted = await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${order.id}/submit`, {
        channelCode: code,
        ...(EXTRAS[code] ? { channelExtras: EXTRAS[code] } : {}),
      });
      expect(submitted.statusCode, submitted.body).toBe(201);
      const attempt = submitted.json();
      expect(attempt).toMatchObject({
        orderId: order.id,
        channelCode: code,
        displayMode: DISPLAY[code],
        amount: 2345,
      });
      expect(attempt.no).toMatch(/^P\d{14}[0-9A-Za-z]{12}$/);

      if (code !== 'alipay_bar') {
        expect(attempt.status).toBe('waiting');
        await openAtProvider(code, attempt, base);
        const paid = await t.runtime.http.inject({
          method: 'POST',
          url: `/__sandbox/control/payments/${attempt.no}/pay`,
        });
        expect(paid.statusCode, paid.body).toBe(200);
        await t.runtime.sandbox!.callbacks.idle();
      }

      const after = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${order.id}`)).json();
      expect(after).toMatchObject({ status: 'paid', channelCode: code, paidAt: expect.any(String) });
      const attempts = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${order.id}/attempts`)).json()
        .data;
      expect(attempts).toEqual([
        expect.objectContaining({ id: attempt.id, status: 'paid', channelTradeNo: expect.any(String) }),
      ]);
      const events = await t.runtime.database.db
        .selectFrom('events')
        .selectAll()
        .where('order_id', '=', order.id)
        .execute();
      expect(events.map((e) => e.type)).toEqual(['order.paid']);
      const tasks = await t.runtime.database.db
        .selectFrom('notify_tasks')
        .selectAll()
        .where('event_id', '=', events[0]!.id)
        .execute();
      expect(tasks).toHaveLength(1);
      expect(tasks[0]!.status).toBe('pending');
    },
  );
});
