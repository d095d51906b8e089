import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signAlipayNotify } from '../../src/channels/alipay/signature.js';
import { formatAlipayTime } from '../../src/channels/alipay/time.js';
import { encryptWechatPayResource } from '../../src/channels/wechatpay/aead.js';
import { signWechatPayResponse } from '../../src/channels/wechatpay/signature.js';
import { formatWechatPayTime } from '../../src/channels/wechatpay/time.js';
import { backends } from '../helpers/backends.js';
import {
  alipayConfig,
  newOrder,
  rsaKeys,
  startTestApp,
  type TestApp,
  wechatPayConfig,
} from '../helpers/harness.js';

/**
 * Channel callbacks forged here with the providers' own keys (the harness's configs use keys this test
 * holds both halves of). Every bad one must get the provider's failure answer and change nothing.
 */
const APIV3_KEY = 'k'.repeat(32);
const PLATFORM_KEY_ID = 'PUB_KEY_ID_0119000001092024000000000001';

interface Attempt {
  orderId: string;
  no: string;
  amount: number;
}

describe.each(backends())('channel callbacks on %s', (backend) => {
  let t: TestApp;
  let app: { id: string; apiKey: string };
  let wx: { id: string };
  let wxOther: { id: string };
  let ali: { id: string };
  const platformKey = () => createPrivateKey(rsaKeys()[1]!.privateKey);
  const strangerKey = createPrivateKey(
    generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    }).privateKey,
  );

  beforeAll(async () => {
    t = await startTestApp(backend);
    app = await t.createApp();
    const channel = async (appId: string, code: string, config: Record<string, unknown>) => {
      const res = await t.admin('POST', '/admin-api/channels', { appId, code, config });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string };
    };
    wx = await channel(app.id, 'wx_native', wechatPayConfig({ apiV3Key: APIV3_KEY }));
    wxOther = await channel(app.id, 'wx_h5', wechatPayConfig({ apiV3Key: APIV3_KEY }));
    ali = await channel(app.id, 'alipay_qr', alipayConfig());
  });
  afterAll(() => t.close());

  /** A waiting order with a waiting attempt on a channel, as a submit leaves it. */
  async function attemptOn(channel: { id: string }, code: string, amount = 1500): Promise<Attempt> {
    const order = (await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder({ amount }))).json();
    const no = `P${Date.now()}${Math.random().toString(36).slice(2, 10)}`.slice(0, 32);
    await t.runtime.database.db
      .insertInto('attempts')
      .values({
        order_id: order.id,
        channel_id: channel.id,
        channel_code: code,
        no,
        amount,
        created_at: t.clock.now(),
        updated_at: t.clock.now(),
      })
      .execute();
    return { orderId: order.id, no, amount };
  }

  function wechatTransaction(attempt: Attempt, overrides: Record<string, unknown> = {}) {
    const config = wechatPayConfig();
    return {
      appid: config.appId,
      mchid: config.mchId,
      out_trade_no: attempt.no,
      transaction_id: '4200000000202603010000000001',
      trade_type: 'NATIVE',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      bank_type: 'OTHERS',
      success_time: formatWechatPayTime(t.clock.now()),
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
      amount: { total: attempt.amount, payer_total: attempt.amount, currency: 'CNY', payer_currency: 'CNY' },
      ...overrides,
    };
  }

  function wechatCallback(
    transaction: Record<string, unknown>,
    options: {
      key?: ReturnType<typeof createPrivateKey>;
      now?: Date;
      apiV3Key?: string;
      mutate?: (body: string) => string;
      signature?: string;
      /** A refund notification (`REFUND.*`, resource type `refund`) instead of a payment's. */
      refundEvent?: string;
    } = {},
  ) {
    const kind = options.refundEvent ? 'refund' : 'transaction';
    const resource = encryptWechatPayResource({
      plaintext: JSON.stringify(transaction),
      apiV3Key: options.apiV3Key ?? APIV3_KEY,
      associatedData: kind,
    });
    const envelope = {
      id: 'EV-2026030108000000001',
      create_time: formatWechatPayTime(t.clock.now()),
      resource_type: 'encrypt-resource',
      event_type: options.refundEvent ?? 'TRANSACTION.SUCCESS',
      summary: options.refundEvent ? '退款成功' : '支付成功',
      resource: { ...resource, original_type: kind },
    };
    const signedBody = JSON.stringify(envelope);
    const headers = signWechatPayResponse({
      body: signedBody,
      privateKey: options.key ?? platformKey(),
      serial: PLATFORM_KEY_ID,
      now: options.now ?? t.clock.now(),
    });
    return {
      headers: {
        ...headers,
        ...(options.signature ? { 'Wechatpay-Signature': options.signature } : {}),
        'content-type': 'application/json',
      },
      body: options.mutate ? options.mutate(signedBody) : signedBody,
    };
  }

  function alipayNotify(
    attempt: Attempt,
    overrides: Record<string, string> = {},
    key = createPrivateKey(rsaKeys()[1]!.privateKey),
  ) {
    const fields = signAlipayNotify(
      {
        notify_time: formatAlipayTime(t.clock.now()),
        notify_type: 'trade_status_sync',
        notify_id: 'ac05099524730693a8b330c5ecf72da9786',
        app_id: String(alipayConfig().appId),
        charset: 'utf-8',
        version: '1.0',
        trade_no: '2026030122001400000000000001',
        out_trade_no: attempt.no,
        trade_status: 'TRADE_SUCCESS',
        total_amount: (attempt.amount / 100).toFixed(2),
        receipt_amount: (attempt.amount / 100).toFixed(2),
        buyer_id: '2088102122524333',
        gmt_payment: formatAlipayTime(t.clock.now()),
        ...overrides,
      },
      key,
    );
    return new URLSearchParams(fields).toString();
  }

  const post = (url: string, body: string, headers: Record<string, string>) =>
    t.runtime.http.inject({ method: 'POST', url, headers, payload: body });

  async function state(attempt: Attempt) {
    const order = await t.runtime.database.db
      .selectFrom('orders')
      .select(['status'])
      .where('id', '=', attempt.orderId)
      .executeTakeFirstOrThrow();
    const row = await t.runtime.database.db
      .selectFrom('attempts')
      .select(['status'])
      .where('no', '=', attempt.no)
      .executeTakeFirstOrThrow();
    const events = await t.runtime.database.db
      .selectFrom('events')
      .select('type')
      .where('order_id', '=', attempt.orderId)
      .execute();
    return { order: order.status, attempt: row.status, events: events.map((e) => e.type) };
  }

  const untouched = { order: 'waiting', attempt: 'waiting', events: [] };

  it('applies a valid WeChat Pay callback and answers SUCCESS', async () => {
    const attempt = await attemptOn(wx, 'wx_native');
    const { headers, body } = wechatCallback(wechatTransaction(attempt));
    const res = await post(`/notify/order/${wx.id}`, body, headers);
    expect([res.statusCode, res.json()]).toEqual([200, { code: 'SUCCESS', message: '成功' }]);
    expect(await state(attempt)).toEqual({ order: 'paid', attempt: 'paid', events: ['order.paid'] });
  });

  it('applies a valid Alipay notify and answers success', async () => {
    const attempt = await attemptOn(ali, 'alipay_qr');
    const res = await post(`/notify/order/${ali.id}`, alipayNotify(attempt), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect([res.statusCode, res.body]).toEqual([200, 'success']);
    expect(await state(attempt)).toEqual({ order: 'paid', attempt: 'paid', events: ['order.paid'] });
  });

  describe('refuses a bad WeChat Pay callback with FAIL, changing nothing', () => {
    const cases: [string, (a: Attempt) => ReturnType<typeof wechatCallback>, string][] = [
      [
        'a wrong signature',
        (a) => wechatCallback(wechatTransaction(a), { signature: Buffer.alloc(256, 7).toString('base64') }),
        'bad_signature',
      ],
      [
        'a signature by another key',
        (a) => wechatCallback(wechatTransaction(a), { key: strangerKey }),
        'bad_signature',
      ],
      [
        'a stale timestamp',
        (a) => wechatCallback(wechatTransaction(a), { now: new Date(t.clock.now().getTime() - 6 * 60_000) }),
        'stale_timestamp',
      ],
      [
        'the SIGNTEST probe',
        (a) => wechatCallback(wechatTransaction(a), { signature: 'WECHATPAY/SIGNTEST/abc' }),
        'signtest_probe',
      ],
      [
        'a tampered ciphertext',
        (a) => {
          const cb = wechatCallback(wechatTransaction(a));
          const envelope = JSON.parse(cb.body);
          const bytes = Buffer.from(envelope.resource.ciphertext, 'base64');
          bytes[3]! ^= 1;
          envelope.resource.ciphertext = bytes.toString('base64');
          // Re-signed, so only the decryption can catch it.
          const body = JSON.stringify(envelope);
          return {
            headers: {
              ...signWechatPayResponse({
                body,
                privateKey: platformKey(),
                serial: PLATFORM_KEY_ID,
                now: t.clock.now(),
              }),
              'content-type': 'application/json',
            },
            body,
          };
        },
        'decrypt_failed',
      ],
      [
        'a resource encrypted with another APIv3 key',
        (a) => wechatCallback(wechatTransaction(a), { apiV3Key: 'z'.repeat(32) }),
        'decrypt_failed',
      ],
      [
        'a tampered body',
        (a) =>
          wechatCallback(wechatTransaction(a), {
            mutate: (b) => b.replace('TRANSACTION.SUCCESS', 'TRANSACTION.SUCCESS '),
          }),
        'bad_signature',
      ],
      [
        'an amount that differs from the attempt',
        (a) =>
          wechatCallback(
            wechatTransaction(a, {
              amount: { total: a.amount - 1, payer_total: a.amount - 1, currency: 'CNY' },
            }),
          ),
        'amount_mismatch',
      ],
      [
        "another merchant's appid",
        (a) => wechatCallback(wechatTransaction(a, { appid: 'wx0000000000000000' })),
        'merchant_mismatch',
      ],
      [
        "another merchant's mchid",
        (a) => wechatCallback(wechatTransaction(a, { mchid: '1900000999' })),
        'merchant_mismatch',
      ],
      [
        'an unknown out_trade_no',
        (a) => wechatCallback(wechatTransaction({ ...a, no: 'PUNKNOWN000000000000' })),
        'unknown_attempt',
      ],
      [
        'malformed JSON',
        () => ({
          headers: {
            'content-type': 'application/json',
            ...signWechatPayResponse({
              body: '{"id":',
              privateKey: platformKey(),
              serial: PLATFORM_KEY_ID,
              now: t.clock.now(),
            }),
          },
          body: '{"id":',
        }),
        'malformed',
      ],
    ];

    it.each(cases)('%s', async (_name, build, reason) => {
      const attempt = await attemptOn(wx, 'wx_native');
      const { headers, body } = build(attempt);
      const logStart = t.logs().length;
      const res = await post(`/notify/order/${wx.id}`, body, headers);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.json()).toEqual({ code: 'FAIL', message: '失败' });
      expect(await state(attempt)).toEqual(untouched);
      expect(t.logs().slice(logStart)).toMatch(new RegExp(`"reason":"${reason}`));
    });

    it("another channel's attempt", async () => {
      const attempt = await attemptOn(wxOther, 'wx_h5');
      const { headers, body } = wechatCallback(wechatTransaction(attempt));
      const logStart = t.logs().length;
      const res = await post(`/notify/order/${wx.id}`, body, headers);
      expect(res.statusCode).toBe(400);
      expect(await state(attempt)).toEqual(untouched);
      expect(t.logs().slice(logStart)).toContain('"reason":"channel_mismatch"');
    });

    it('an oversized body', async () => {
      const attempt = await attemptOn(wx, 'wx_native');
      const res = await post(`/notify/order/${wx.id}`, JSON.stringify({ pad: 'x'.repeat(70 * 1024) }), {
        'content-type': 'application/json',
      });
      expect(res.statusCode).toBe(413);
      expect(await state(attempt)).toEqual(untouched);
    });
  });

  describe('refuses a bad Alipay notify with failure, changing nothing', () => {
    const cases: [string, (a: Attempt) => string][] = [
      ['a signature by another key', (a) => alipayNotify(a, {}, strangerKey)],
      ['a tampered amount', (a) => alipayNotify(a).replace(/total_amount=[^&]+/, 'total_amount=0.01')],
      ['an amount that differs from the attempt', (a) => alipayNotify(a, { total_amount: '0.01' })],
      ["another merchant's app_id", (a) => alipayNotify(a, { app_id: '2021000000009999' })],
      ['an unknown out_trade_no', (a) => alipayNotify({ ...a, no: 'PUNKNOWN000000000000' })],
      ['a malformed form', () => '%%%=&&=='],
      ['no signature', (a) => alipayNotify(a).replace(/&?sign=[^&]+/, '')],
    ];
    it.each(cases)('%s', async (_name, build) => {
      const attempt = await attemptOn(ali, 'alipay_qr');
      const res = await post(`/notify/order/${ali.id}`, build(attempt), {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect([res.statusCode, res.body]).toEqual([200, 'failure']);
      expect(await state(attempt)).toEqual(untouched);
    });
  });

  it('answers 404 for an unknown channel, and refuses a payment callback on the refund URL', async () => {
    const attempt = await attemptOn(wx, 'wx_native');
    const { headers, body } = wechatCallback(wechatTransaction(attempt));
    expect((await post('/notify/order/999999', body, headers)).statusCode).toBe(404);
    expect((await post('/notify/order/abc', body, headers)).statusCode).toBe(404);
    expect((await post(`/notify/refund/${wx.id}`, body, headers)).statusCode).toBe(400);
    expect(await state(attempt)).toEqual(untouched);
  });

  beforeEach(() => {
    // Each case reads the log for its own reason; a fresh clock keeps timestamps in the window.
    t.clock.advance(1000);
  });

  describe('WeChat refund notifications', () => {
    /** A paid order (through a real payment callback) with a 500-fen refund sent to WeChat. */
    async function waitingRefund() {
      const attempt = await attemptOn(wx, 'wx_native');
      const { headers, body } = wechatCallback(wechatTransaction(attempt));
      expect((await post(`/notify/order/${wx.id}`, body, headers)).statusCode).toBe(200);
      const order = await t.runtime.database.db
        .selectFrom('orders')
        .select(['app_id'])
        .where('id', '=', attempt.orderId)
        .executeTakeFirstOrThrow();
      const paid = await t.runtime.database.db
        .selectFrom('attempts')
        .select(['id'])
        .where('no', '=', attempt.no)
        .executeTakeFirstOrThrow();
      const no = `R${Date.now()}${Math.random().toString(36).slice(2, 10)}`.slice(0, 32);
      const row = await t.runtime.database.db
        .insertInto('refunds')
        .values({
          app_id: order.app_id,
          order_id: attempt.orderId,
          attempt_id: paid.id,
          kind: 'merchant',
          merchant_refund_id: no,
          no,
          amount: 500,
          submitted_at: t.clock.now(),
          created_at: t.clock.now(),
          updated_at: t.clock.now(),
        })
        .returning(['id'])
        .executeTakeFirstOrThrow();
      return { attempt, refundId: row.id, no };
    }

    const refundResource = (
      refund: { attempt: Attempt; no: string },
      overrides: Record<string, unknown> = {},
    ) => ({
      mchid: wechatPayConfig().mchId,
      out_trade_no: refund.attempt.no,
      transaction_id: '4200000000202603010000000001',
      out_refund_no: refund.no,
      refund_id: '50000000382019052709732678859',
      refund_status: 'SUCCESS',
      success_time: formatWechatPayTime(t.clock.now()),
      user_received_account: '支付用户零钱',
      amount: {
        total: refund.attempt.amount,
        refund: 500,
        payer_total: refund.attempt.amount,
        payer_refund: 500,
      },
      ...overrides,
    });

    async function books(refund: { attempt: Attempt; refundId: string }) {
      const db = t.runtime.database.db;
      const order = await db
        .selectFrom('orders')
        .select(['status', 'refunded_amount'])
        .where('id', '=', refund.attempt.orderId)
        .executeTakeFirstOrThrow();
      const row = await db
        .selectFrom('refunds')
        .select(['status'])
        .where('id', '=', refund.refundId)
        .executeTakeFirstOrThrow();
      const events = await db
        .selectFrom('events')
        .select('type')
        .where('refund_id', '=', refund.refundId)
        .execute();
      return {
        order: order.status,
        refunded: Number(order.refunded_amount),
        refund: row.status,
        events: events.map((e) => e.type),
      };
    }

    const refusals: [
      string,
      (r: { attempt: Attempt; no: string }) => Record<string, unknown>,
      string,
      string?,
    ][] = [
      [
        'an unknown out_refund_no',
        (r) => refundResource(r, { out_refund_no: 'R-NOT-OURS' }),
        'unknown_refund',
      ],
      [
        "another payment's out_trade_no",
        (r) => refundResource(r, { out_trade_no: 'P-SOMEONE-ELSE' }),
        'trade_mismatch',
      ],
      [
        'another amount',
        (r) =>
          refundResource(r, {
            amount: { total: r.attempt.amount, refund: 501, payer_total: 1, payer_refund: 1 },
          }),
        'amount_mismatch',
      ],
      ["another channel's URL", (r) => refundResource(r), 'channel_mismatch', 'other'],
    ];

    it.each(refusals)('refuses %s and changes nothing', async (_what, build, reason, url) => {
      const refund = await waitingRefund();
      const before = await books(refund);
      expect(before).toEqual({ order: 'paid', refunded: 0, refund: 'waiting', events: [] });
      const { headers, body } = wechatCallback(build(refund), { refundEvent: 'REFUND.SUCCESS' });
      const logStart = t.logs().length;
      const res = await post(`/notify/refund/${url === 'other' ? wxOther.id : wx.id}`, body, headers);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.json()).toEqual({ code: 'FAIL', message: '失败' });
      expect(await books(refund)).toEqual(before);
      expect(t.logs().slice(logStart)).toContain(`"reason":"${reason}"`);
    });

    it('applies a refund notification once, however often WeChat sends it', async () => {
      const refund = await waitingRefund();
      const { headers, body } = wechatCallback(refundResource(refund), { refundEvent: 'REFUND.SUCCESS' });
      for (let i = 0; i < 3; i++) {
        const res = await post(`/notify/refund/${wx.id}`, body, headers);
        expect([res.statusCode, res.json()]).toEqual([200, { code: 'SUCCESS', message: '成功' }]);
      }
      expect(await books(refund)).toEqual({
        order: 'paid',
        refunded: 500,
        refund: 'succeeded',
        events: ['refund.succeeded'],
      });
    });
  });

  it('applies 20 identical callbacks arriving at once exactly once', async () => {
    const attempt = await attemptOn(wx, 'wx_native');
    const { headers, body } = wechatCallback(wechatTransaction(attempt));
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => post(`/notify/order/${wx.id}`, body, headers)),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(200));
    expect(await state(attempt)).toEqual({ order: 'paid', attempt: 'paid', events: ['order.paid'] });
    const tasks = await t.runtime.database.db
      .selectFrom('notify_tasks')
      .innerJoin('events', 'events.id', 'notify_tasks.event_id')
      .select('notify_tasks.id')
      .where('events.order_id', '=', attempt.orderId)
      .execute();
    expect(tasks).toHaveLength(1);
  });

  it('records a second paid attempt of a paid order as a duplicate payment', async () => {
    const first = await attemptOn(wx, 'wx_native');
    const paidFirst = wechatCallback(wechatTransaction(first));
    expect((await post(`/notify/order/${wx.id}`, paidFirst.body, paidFirst.headers)).statusCode).toBe(200);
    const no = `PDUP${Date.now()}`;
    await t.runtime.database.db
      .insertInto('attempts')
      .values({
        order_id: first.orderId,
        channel_id: ali.id,
        channel_code: 'alipay_qr',
        no,
        amount: first.amount,
        created_at: t.clock.now(),
        updated_at: t.clock.now(),
      })
      .execute();
    const res = await post(`/notify/order/${ali.id}`, alipayNotify({ ...first, no }), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.body).toBe('success');
    const events = await t.runtime.database.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('order_id', '=', first.orderId)
      .orderBy('id')
      .execute();
    expect(events.map((e) => e.type)).toEqual(['order.paid', 'order.duplicate_paid']);
    expect(events[1]!.payload).toMatchObject({
      status: 'paid',
      duplicateAttempt: { no, status: 'paid', channelCode: 'alipay_qr' },
    });
    const order = (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${first.orderId}`)).json();
    expect(order).toMatchObject({ status: 'paid', channelCode: 'wx_native' });
  });

  it('applies a payment that arrives after the order was closed: the payer paid', async () => {
    const attempt = await attemptOn(wx, 'wx_native');
    await t.runtime.database.db
      .updateTable('attempts')
      .set({ status: 'closed' })
      .where('no', '=', attempt.no)
      .execute();
    expect(
      (await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${attempt.orderId}/close`)).json().status,
    ).toBe('closed');
    const { headers, body } = wechatCallback(wechatTransaction(attempt));
    expect((await post(`/notify/order/${wx.id}`, body, headers)).statusCode).toBe(200);
    expect(await state(attempt)).toEqual({
      order: 'paid',
      attempt: 'paid',
      events: ['order.closed', 'order.paid'],
    });
  });
});
