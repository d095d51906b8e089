import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { backends } from '../helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from '../helpers/harness.js';
import { Receiver, webhookHeaders } from '../helpers/webhook-receiver.js';
import { dispatcherFor } from './helpers.js';

describe.each(backends())('a paid order in the sandbox, end to end, on %s', (backend) => {
  let t: TestApp;
  let receiver: Receiver;

  beforeAll(async () => {
    t = await startTestApp(
      backend,
      { PAYCENTER_SANDBOX_TIME_SCALE: '0.001' },
      { listen: true, clock: systemClock },
    );
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  it('reaches the merchant as an order.paid webhook that verifies with a Standard Webhooks library', async () => {
    const merchants = (
      await t.runtime.http.inject({ method: 'POST', url: '/__sandbox/control/merchants' })
    ).json();
    const app = await t.createApp({ notifyUrl: receiver.url('/paycenter/{channelCode}') });
    const channel = await t.admin('POST', '/admin-api/channels', {
      appId: app.id,
      code: 'wx_native',
      config: merchants.wechatpay,
    });
    expect(channel.statusCode, channel.body).toBe(201);
    const order = (await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder({ amount: 888 }))).json();
    const attempt = (
      await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${order.id}/submit`, { channelCode: 'wx_native' })
    ).json();
    const paid = await t.runtime.http.inject({
      method: 'POST',
      url: `/__sandbox/control/payments/${attempt.no}/pay`,
    });
    expect(paid.statusCode, paid.body).toBe(200);
    await t.runtime.sandbox!.callbacks.idle();

    const dispatcher = dispatcherFor(t, {}, { clock: systemClock });
    try {
      expect(await dispatcher.drain()).toBe(1);
    } finally {
      await dispatcher.close();
    }
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    const headers = webhookHeaders(request!);
    const event = new Webhook(app.webhookSecret).verify(request!.body, headers) as Record<string, unknown>;
    const view = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${order.id}`)).json();
    expect(event).toEqual({
      id: headers['webhook-id'],
      type: 'order.paid',
      createdAt: expect.any(String),
      data: view,
    });
    expect(view).toMatchObject({ status: 'paid', amount: 888, channelCode: 'wx_native' });
  });
});
