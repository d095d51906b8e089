import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRefund } from '../../src/refunds/apply-refund.js';
import { backends } from '../helpers/backends.js';
import { eventually, type SandboxShop, startSandboxShop } from './sandbox-shop.js';

describe.each(backends())('refunds on %s', (backend) => {
  let shop: SandboxShop;
  let other: { id: string; apiKey: string };

  beforeAll(async () => {
    shop = await startSandboxShop(backend, ['wx_native', 'alipay_qr']);
    other = await shop.t.createApp({ name: 'Another shop' });
  });
  afterAll(() => shop.close());

  const refund = (body: Record<string, unknown>, apiKey = shop.app.apiKey) =>
    shop.t.merchant(apiKey, 'POST', '/api/v1/refunds', body);

  /** An order paid through `code`, its callback applied. */
  async function paidOrder(code: 'wx_native' | 'alipay_qr', amount: number) {
    const order = await shop.order({ amount });
    const attempt = await shop.submit(order.id, code);
    await shop.pay(attempt.no);
    await shop.settle();
    expect((await shop.getOrder(order.id)).status).toBe('paid');
    return { order, attempt };
  }

  /**
   * A WeChat refund of the whole of a paid order that the sandbox answers ABNORMAL (the payer's card
   * cannot take it), once its callback has made it `failed` here.
   */
  async function abnormalRefund(amount: number, merchantRefundId: string) {
    const { order, attempt } = await paidOrder('wx_native', amount);
    const created = await refund({
      orderId: order.id,
      merchantRefundId,
      amount,
      reason: 'SANDBOX_ABNORMAL card cancelled',
    });
    // WeChat answers "processing"; its ABNORMAL callback may already have been applied by the time
    // the answer is read back.
    expect(created.json().status).toBeOneOf(['waiting', 'failed']);
    const refundId = created.json().id as string;
    const view = async () =>
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${refundId}`)).json();
    const failed = await eventually(async () => {
      const current = await view();
      return current.status === 'waiting' ? undefined : current;
    }, 'the ABNORMAL refund callback');
    return { order, attempt, refundId, view, failed };
  }

  const refundRows = async () =>
    Number(
      (
        await shop.t.runtime.database.db
          .selectFrom('refunds')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('refuses bad refunds with a clear error and writes nothing', async () => {
    const { order } = await paidOrder('alipay_qr', 1000);
    const unpaid = await shop.order({ amount: 1000 });
    const taken = await refund({ orderId: order.id, merchantRefundId: 'R-TAKEN', amount: 100 });
    expect(taken.statusCode, taken.body).toBe(201);
    const before = await refundRows();

    const cases: [string, Record<string, unknown>, number, string, string?][] = [
      ['an unpaid order', { orderId: unpaid.id, merchantRefundId: 'R-1', amount: 1 }, 409, 'order_not_paid'],
      [
        'more than is left',
        { orderId: order.id, merchantRefundId: 'R-2', amount: 901 },
        409,
        'refund_exceeds_balance',
      ],
      ['zero fen', { orderId: order.id, merchantRefundId: 'R-3', amount: 0 }, 400, 'invalid_request'],
      [
        'a fraction of a fen',
        { orderId: order.id, merchantRefundId: 'R-4', amount: 1.5 },
        400,
        'invalid_request',
      ],
      ['an unknown order', { orderId: '999999999', merchantRefundId: 'R-5', amount: 1 }, 404, 'not_found'],
      [
        'an unknown merchant order id',
        { merchantOrderId: 'nope', merchantRefundId: 'R-6', amount: 1 },
        404,
        'not_found',
      ],
      [
        'both order ids',
        { orderId: order.id, merchantOrderId: order.merchantOrderId, merchantRefundId: 'R-7', amount: 1 },
        400,
        'invalid_request',
      ],
      ['no order id', { merchantRefundId: 'R-8', amount: 1 }, 400, 'invalid_request'],
      [
        'a malformed refund id',
        { orderId: order.id, merchantRefundId: 'R 9!', amount: 1 },
        400,
        'invalid_request',
      ],
      [
        'a reason over 80 characters',
        { orderId: order.id, merchantRefundId: 'R-10', amount: 1, reason: 'x'.repeat(81) },
        400,
        'invalid_request',
      ],
      [
        'an unknown field',
        { orderId: order.id, merchantRefundId: 'R-11', amount: 1, currency: 'CNY' },
        400,
        'invalid_request',
      ],
      [
        'a taken refund id with another amount',
        { orderId: order.id, merchantRefundId: 'R-TAKEN', amount: 200 },
        409,
        'refund_conflict',
      ],
      [
        'a taken refund id on another order',
        { orderId: unpaid.id, merchantRefundId: 'R-TAKEN', amount: 100 },
        409,
        'refund_conflict',
      ],
    ];
    for (const [what, body, status, code] of cases) {
      const res = await refund(body);
      expect(res.statusCode, `${what}: ${res.body}`).toBe(status);
      expect(res.json().error.code, what).toBe(code);
    }
    // Another app's order is not there at all for this key, and this app's is not there for the other.
    const foreign = await refund({ orderId: order.id, merchantRefundId: 'R-12', amount: 1 }, other.apiKey);
    expect(foreign.statusCode).toBe(404);
    expect(await refundRows()).toBe(before);
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', refundedAmount: 100 });

    // Reading: malformed ids are refused or not found, and another app sees none of this app's refunds.
    const get = (url: string, apiKey = shop.app.apiKey) => shop.t.merchant(apiKey, 'GET', url);
    expect((await get('/api/v1/refunds?orderId=abc')).json().error.code).toBe('invalid_request');
    expect((await get('/api/v1/refunds?before=1e3')).json().error.code).toBe('invalid_request');
    expect((await get('/api/v1/refunds?limit=0')).statusCode).toBe(400);
    expect((await get('/api/v1/refunds/not-an-id')).statusCode).toBe(404);
    expect((await get(`/api/v1/refunds/${taken.json().id}`, other.apiKey)).statusCode).toBe(404);
    expect((await get(`/api/v1/refunds?orderId=${order.id}`, other.apiKey)).json().data).toEqual([]);
    // Found by the merchant's own refund id or by status; never another app's.
    const byMerchantId = (await get('/api/v1/refunds?merchantRefundId=R-TAKEN')).json().data;
    expect(byMerchantId.map((r: { id: string }) => r.id)).toEqual([taken.json().id]);
    expect((await get('/api/v1/refunds?merchantRefundId=R-TAKEN', other.apiKey)).json().data).toEqual([]);
    expect((await get('/api/v1/refunds?merchantRefundId=R-NONE')).json().data).toEqual([]);
    expect((await get(`/api/v1/refunds?status=succeeded&orderId=${order.id}`)).json().data).toHaveLength(1);
    expect((await get(`/api/v1/refunds?status=failed&orderId=${order.id}`)).json().data).toEqual([]);
    expect((await get('/api/v1/refunds?status=done')).statusCode).toBe(400);
    expect((await get(`/api/v1/refunds?merchantRefundId=${'x'.repeat(65)}`)).statusCode).toBe(400);
    const syncForeign = await shop.t.merchant(other.apiKey, 'POST', `/api/v1/orders/${order.id}/sync`);
    expect(syncForeign.statusCode).toBe(404);
  });

  it('repeats nothing for a repeated merchantRefundId (200 with the same refund)', async () => {
    const { order } = await paidOrder('alipay_qr', 500);
    const body = { orderId: order.id, merchantRefundId: 'R-ONCE', amount: 200 };
    const first = await refund(body);
    expect(first.statusCode).toBe(201);
    const again = await refund({
      merchantOrderId: order.merchantOrderId,
      merchantRefundId: 'R-ONCE',
      amount: 200,
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    expect(await shop.getOrder(order.id)).toMatchObject({ refundedAmount: 200 });
  });

  it('refunds Alipay at once, in parts, until the order is refunded', async () => {
    const { order, attempt } = await paidOrder('alipay_qr', 1000);
    const first = await refund({
      orderId: order.id,
      merchantRefundId: 'A-1',
      amount: 300,
      reason: 'one cup broken',
    });
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toMatchObject({
      orderId: order.id,
      attemptId: attempt.id,
      kind: 'merchant',
      merchantRefundId: 'A-1',
      amount: 300,
      reason: 'one cup broken',
      status: 'succeeded',
      succeededAt: expect.any(String),
    });
    expect(first.json().no).toMatch(/^R\d{14}[0-9A-Za-z]{12}$/);
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', refundedAmount: 300 });
    const rest = await refund({ orderId: order.id, merchantRefundId: 'A-2', amount: 700 });
    expect(rest.json().status).toBe('succeeded');
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 1000 });
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.succeeded', 'refund.succeeded']);
    const listed = (
      await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds?orderId=${order.id}`)
    ).json();
    expect(listed.data.map((r: { merchantRefundId: string }) => r.merchantRefundId)).toEqual(['A-2', 'A-1']);
    const more = await refund({ orderId: order.id, merchantRefundId: 'A-3', amount: 1 });
    expect(more.json().error.code).toBe('refund_exceeds_balance');
    // The provider's books agree.
    const payment = shop.t.runtime.sandbox!.ledger.find(attempt.no)!;
    expect(payment.refunds.map((r) => [r.amount, r.status])).toEqual([
      [300, 'succeeded'],
      [700, 'succeeded'],
    ]);
  });

  it('finishes a WeChat refund by its callback, and a refund with a lost callback by query', async () => {
    const { order } = await paidOrder('wx_native', 800);
    const created = await refund({ orderId: order.id, merchantRefundId: 'W-1', amount: 500 });
    expect(created.statusCode).toBe(201);
    // WeChat answers "processing"; its callback may already have finished the refund by the time the
    // answer is read back.
    expect(created.json().status).toBeOneOf(['waiting', 'succeeded']);
    // While it is in progress (or once it succeeded), its money is spoken for.
    const tooMuch = await refund({ orderId: order.id, merchantRefundId: 'W-2', amount: 301 });
    expect(tooMuch.json().error.code).toBe('refund_exceeds_balance');
    const done = await eventually(async () => {
      const view = (
        await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${created.json().id}`)
      ).json();
      return view.status === 'waiting' ? undefined : view;
    }, 'the WeChat refund callback');
    expect(done).toMatchObject({ status: 'succeeded', channelRefundNo: expect.any(String) });
    expect(await shop.getOrder(order.id)).toMatchObject({ refundedAmount: 500 });

    // The next refund's callback is lost: the refund job asks WeChat once its first query is due.
    shop.t.runtime.sandbox!.callbacks.setMode('drop', 1);
    const lost = await refund({ orderId: order.id, merchantRefundId: 'W-3', amount: 300 });
    expect(lost.json().status).toBe('waiting');
    await eventually(
      async () =>
        shop.t.runtime.sandbox!.callbacks.callbacks.at(-1)?.state === 'dropped' ? true : undefined,
      'the sandbox to drop the refund callback',
    );
    expect(
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${lost.json().id}`)).json().status,
    ).toBe('waiting');
    await shop.t.runtime.jobs.runOnce();
    expect(
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${lost.json().id}`)).json().status,
    ).toBe('waiting');
    shop.t.clock.advance(10_000);
    await shop.t.runtime.jobs.runUntilQuiet();
    expect(
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${lost.json().id}`)).json().status,
    ).toBe('succeeded');
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 800 });
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.succeeded', 'refund.succeeded']);
  });

  it('reports a WeChat refund that ends ABNORMAL as refund.failed, and counts it once WeChat pays it out after all', async () => {
    const { order, attempt, refundId, view, failed } = await abnormalRefund(600, 'X-1');
    expect(failed).toMatchObject({
      status: 'failed',
      failureReason: expect.stringMatching(/^ABNORMAL: /),
      failedAt: expect.any(String),
    });
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', refundedAmount: 0 });
    const event = await shop.t.runtime.database.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('refund_id', '=', refundId)
      .executeTakeFirstOrThrow();
    expect(event).toMatchObject({ type: 'refund.failed', payload: { id: refundId, status: 'failed' } });
    // WeChat still holds the money: it is not the merchant's to refund again meanwhile.
    const again = await refund({ orderId: order.id, merchantRefundId: 'X-2', amount: 1 });
    expect([again.statusCode, again.json().error]).toEqual([
      409,
      expect.objectContaining({ code: 'refund_exceeds_balance', refundable: 0, inProgress: 600 }),
    ]);

    // The merchant reroutes it in the WeChat Pay console; WeChat pays it out and calls back SUCCESS.
    const rerouted = await shop.t.runtime.http.inject({
      method: 'POST',
      url: `/__sandbox/control/payments/${attempt.no}/refunds/${failed.no}/reroute`,
    });
    expect(rerouted.statusCode, rerouted.body).toBe(200);
    const succeeded = await eventually(async () => {
      const current = await view();
      return current.status === 'succeeded' ? current : undefined;
    }, 'the rerouted refund callback');
    expect(succeeded.succeededAt).toEqual(expect.any(String));
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 600 });
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.failed', 'refund.succeeded']);
  });

  it('keeps a refund waiting while the provider cannot be reached, and sends it when the job runs', async () => {
    const { order, attempt } = await paidOrder('alipay_qr', 700);
    const channelId = shop.channels.alipay_qr!;
    const gateway = (config: Record<string, unknown>) =>
      shop.t.admin('PATCH', `/admin-api/channels/${channelId}`, { config });
    // Nothing listens on port 9 of this machine: the refund request cannot be sent.
    expect(
      (await gateway({ ...shop.merchants.alipay, gateway: 'http://127.0.0.1:9/gateway.do' })).statusCode,
    ).toBe(200);
    const created = await refund({ orderId: order.id, merchantRefundId: 'U-1', amount: 700 });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ status: 'waiting', failureReason: null });
    expect(shop.t.runtime.sandbox!.ledger.find(attempt.no)!.refunds).toEqual([]);
    // Still unreachable when the refund job first tries: it stays waiting, and the job logs why.
    shop.t.clock.advance(10_000);
    await shop.t.runtime.jobs.runUntilQuiet();
    expect(
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${created.json().id}`)).json().status,
    ).toBe('waiting');
    expect(shop.t.logs()).toContain('channel did not answer; trying again later');

    expect((await gateway(shop.merchants.alipay)).statusCode).toBe(200);
    shop.t.clock.advance(30_000);
    await shop.t.runtime.jobs.runUntilQuiet();
    expect(
      (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds/${created.json().id}`)).json().status,
    ).toBe('succeeded');
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 700 });
    expect(shop.t.runtime.sandbox!.ledger.find(attempt.no)!.refunds).toEqual([
      expect.objectContaining({ amount: 700, status: 'succeeded' }),
    ]);
  });

  it('keeps asking WeChat about a refund it holds (ABNORMAL): a lost payout callback is found by the refund job', async () => {
    const { order, attempt, refundId, view, failed } = await abnormalRefund(400, 'H-1');
    expect(failed.status).toBe('failed');
    // The payout's callback is lost.
    shop.t.runtime.sandbox!.callbacks.setMode('drop', 1);
    const rerouted = await shop.t.runtime.http.inject({
      method: 'POST',
      url: `/__sandbox/control/payments/${attempt.no}/refunds/${failed.no}/reroute`,
    });
    expect(rerouted.statusCode, rerouted.body).toBe(200);
    await eventually(
      async () =>
        shop.t.runtime.sandbox!.callbacks.callbacks.at(-1)?.state === 'dropped' ? true : undefined,
      'the sandbox to drop the payout callback',
    );
    expect((await view()).status).toBe('failed');
    // The refund job asks about it on its schedule, as about a waiting refund, and finds it paid out.
    for (const step of [10_000, 30_000, 60_000, 300_000]) {
      shop.t.clock.advance(step);
      await shop.t.runtime.jobs.runUntilQuiet();
    }
    expect(await view()).toMatchObject({ status: 'succeeded' });
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 400 });
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.failed', 'refund.succeeded']);
    // Settled: the job no longer asks about it.
    const row = await shop.t.runtime.database.db
      .selectFrom('refunds')
      .select(['held_by_provider', 'next_query_at'])
      .where('id', '=', refundId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ held_by_provider: false, next_query_at: null });
  });

  it('frees the money of a held refund the provider closes instead, without another event', async () => {
    const { order, failed } = await abnormalRefund(300, 'H-2');
    expect(failed.status).toBe('failed');
    const closedReport = {
      outRefundNo: failed.no as string,
      state: 'failed' as const,
      amount: 300,
      channelRefundNo: null,
      finishedAt: null,
      failureReason: 'the refund was closed by WeChat Pay',
      providerState: 'CLOSED',
      raw: {},
    };
    const apply = () =>
      applyRefund(shop.t.runtime.database.db, shop.t.clock, {
        channelId: null,
        outTradeNo: null,
        refund: closedReport,
      });
    expect(await apply()).toEqual({ result: 'unchanged' });
    expect(await apply()).toEqual({ result: 'unchanged' });
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.failed']);
    // Its 300 fen may now be refunded again.
    const again = await refund({ orderId: order.id, merchantRefundId: 'H-3', amount: 300 });
    expect(again.statusCode, again.body).toBe(201);
  });

  it('lets exactly 10 of 50 concurrent 1-fen refunds of a 10-fen order through', async () => {
    const { order } = await paidOrder('alipay_qr', 10);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        refund({ orderId: order.id, merchantRefundId: `C-${i}`, amount: 1 }),
      ),
    );
    const created = answers.filter((a) => a.statusCode === 201);
    const refused = answers.filter((a) => a.statusCode === 409);
    expect(created).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const answer of refused) expect(answer.json().error.code).toBe('refund_exceeds_balance');
    for (const answer of created) expect(answer.json().status).toBe('succeeded');
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'refunded', refundedAmount: 10 });
    const stored = await shop.t.runtime.database.db
      .selectFrom('refunds')
      .select(['status'])
      .where('order_id', '=', order.id)
      .execute();
    expect(stored).toHaveLength(10);
  });
});
