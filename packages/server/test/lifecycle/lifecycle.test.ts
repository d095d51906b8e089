import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimDueAttempts } from '../../src/attempts/attempt.repository.js';
import { backends } from '../helpers/backends.js';
import { eventually, type SandboxShop, startSandboxShop } from './sandbox-shop.js';

const MINUTE = 60_000;

describe.each(backends())('order lifecycle on %s', (backend) => {
  let shop: SandboxShop;
  const sandbox = () => shop.t.runtime.sandbox!;
  const jobs = () => shop.t.runtime.jobs;

  beforeAll(async () => {
    shop = await startSandboxShop(backend, ['wx_native', 'alipay_qr', 'alipay_pc']);
  });
  afterAll(() => shop.close());

  const attemptsOf = async (orderId: string) =>
    (await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/orders/${orderId}/attempts`)).json().data as {
      id: string;
      no: string;
      status: string;
    }[];

  it('recovers a dropped payment callback by the payment-query job, once the first query is due', async () => {
    const order = await shop.order({ amount: 2500 });
    const attempt = await shop.submit(order.id, 'wx_native');
    sandbox().callbacks.setMode('drop', 1);
    await shop.pay(attempt.no);
    await shop.settle();
    expect((await shop.getOrder(order.id)).status).toBe('waiting');

    await jobs().runUntilQuiet();
    expect((await shop.getOrder(order.id)).status).toBe('waiting'); // not due yet: 60 s after submit
    shop.t.clock.advance(MINUTE);
    await jobs().runUntilQuiet();
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', channelCode: 'wx_native' });
    expect(await shop.events(order.id)).toEqual(['order.paid']);
    // Asking again changes nothing.
    shop.t.clock.advance(10 * MINUTE);
    await jobs().runUntilQuiet();
    const synced = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${order.id}/sync`);
    expect(synced.json()).toMatchObject({ queried: 0, applied: 0, order: { status: 'paid' } });
    expect(await shop.events(order.id)).toEqual(['order.paid']);
  });

  it("applies a lost payment on the merchant's POST /orders/:id/sync", async () => {
    const order = await shop.order();
    const attempt = await shop.submit(order.id, 'alipay_qr');
    sandbox().callbacks.setMode('drop', 1);
    await shop.pay(attempt.no);
    await shop.settle();
    const synced = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${order.id}/sync`);
    expect(synced.statusCode).toBe(200);
    expect(synced.json()).toMatchObject({ queried: 1, applied: 1, failures: [], order: { status: 'paid' } });
    const again = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${order.id}/sync`);
    expect(again.json()).toMatchObject({ queried: 0, applied: 0 });
    expect(await shop.events(order.id)).toEqual(['order.paid']);
    const unknown = await shop.t.merchant(shop.app.apiKey, 'POST', '/api/v1/orders/987654321/sync');
    expect(unknown.statusCode).toBe(404);
  });

  it('refunds a payment of an old QR code after the order was paid through another attempt', async () => {
    const order = await shop.order({ amount: 1800 });
    const first = await shop.submit(order.id, 'wx_native');
    const second = await shop.submit(order.id, 'alipay_qr');
    await shop.pay(second.no);
    await shop.settle();
    expect((await shop.getOrder(order.id)).status).toBe('paid');
    // The payer scans the first QR code too, before paycenter got round to closing it.
    await shop.pay(first.no);
    await shop.settle();
    expect(await shop.events(order.id)).toEqual(['order.paid', 'order.duplicate_paid']);
    const duplicate = await shop.t.runtime.database.db
      .selectFrom('events')
      .select('payload')
      .where('order_id', '=', order.id)
      .where('type', '=', 'order.duplicate_paid')
      .executeTakeFirstOrThrow();
    expect(duplicate.payload).toMatchObject({
      status: 'paid',
      duplicateAttempt: { id: first.id, status: 'paid' },
      autoRefund: { kind: 'duplicate_payment', amount: 1800, status: 'waiting', attemptId: first.id },
    });

    await jobs().runUntilQuiet(); // sends the refund to WeChat, which finishes it and calls back
    const refunds = await eventually(async () => {
      const list = (
        await shop.t.merchant(shop.app.apiKey, 'GET', `/api/v1/refunds?orderId=${order.id}`)
      ).json().data;
      return list[0]?.status === 'succeeded' ? list : undefined;
    }, 'the duplicate-payment refund');
    expect(refunds).toEqual([
      expect.objectContaining({
        kind: 'duplicate_payment',
        merchantRefundId: null,
        attemptId: first.id,
        amount: 1800,
      }),
    ]);
    // The order's own payment is untouched; the provider has the duplicate back.
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', refundedAmount: 0 });
    expect(sandbox().ledger.find(first.no)!.refunds).toEqual([
      expect.objectContaining({ amount: 1800, status: 'succeeded' }),
    ]);
    expect(await shop.events(order.id)).toEqual(['order.paid', 'order.duplicate_paid', 'refund.succeeded']);
  });

  it('closes the other waiting attempts of a paid order at their channels soon after', async () => {
    const order = await shop.order();
    const first = await shop.submit(order.id, 'wx_native');
    const second = await shop.submit(order.id, 'alipay_qr');
    await shop.pay(second.no);
    await shop.settle();
    await jobs().runUntilQuiet(); // due at once, not 60 s after the submit
    expect((await attemptsOf(order.id)).map((a) => a.status)).toEqual(['closed', 'paid']);
    expect(sandbox().ledger.find(first.no)!.status).toBe('closed');
  });

  it('keeps duplicate payments for the merchant when the app turned autoRefundDuplicates off', async () => {
    const other = await startSandboxShop(backend, ['wx_native', 'alipay_qr'], {
      autoRefundDuplicates: false,
    });
    try {
      const order = await other.order();
      const first = await other.submit(order.id, 'wx_native');
      const second = await other.submit(order.id, 'alipay_qr');
      await other.pay(second.no);
      await other.pay(first.no);
      await other.settle();
      await other.t.runtime.jobs.runUntilQuiet();
      expect(await other.events(order.id)).toEqual(['order.paid', 'order.duplicate_paid']);
      expect(await other.t.count('events')).toBe(2);
      const list = (
        await other.t.merchant(other.app.apiKey, 'GET', `/api/v1/refunds?orderId=${order.id}`)
      ).json();
      expect(list.data).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('closes an unpaid order when it expires: at the channel first, then here, with order.closed', async () => {
    const order = await shop.order({ expireInSeconds: 300 });
    const attempt = await shop.submit(order.id, 'wx_native');
    shop.t.clock.advance(299_000);
    await jobs().runUntilQuiet();
    expect((await shop.getOrder(order.id)).status).toBe('waiting');
    shop.t.clock.advance(1000);
    await jobs().runUntilQuiet();
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'closed', closedAt: expect.any(String) });
    expect((await attemptsOf(order.id)).map((a) => a.status)).toEqual(['closed']);
    expect(sandbox().ledger.find(attempt.no)!.status).toBe('closed');
    expect(await shop.events(order.id)).toEqual(['order.closed']);
  });

  it('lets a payment whose callback is late win over expiry: the order ends paid, never closed', async () => {
    const order = await shop.order({ expireInSeconds: 300 });
    const attempt = await shop.submit(order.id, 'alipay_qr');
    // The callback is held until released: it certainly arrives after the expiry job ran.
    sandbox().callbacks.setMode('delay', 1, 86_400_000);
    await shop.pay(attempt.no);
    expect(sandbox().callbacks.delayedCount()).toBe(1);
    shop.t.clock.advance(301_000);
    await jobs().runUntilQuiet();
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', closedAt: null });
    expect(sandbox().callbacks.releaseDelayed()).toBe(1);
    await shop.settle(); // the late callback changes nothing more
    expect(sandbox().callbacks.callbacks.at(-1)).toMatchObject({
      outTradeNo: attempt.no,
      state: 'acknowledged',
    });
    expect(await shop.events(order.id)).toEqual(['order.paid']);
  });

  const nextQueryAt = async (attemptId: string) =>
    (
      await shop.t.runtime.database.db
        .selectFrom('attempts')
        .select('next_query_at')
        .where('id', '=', attemptId)
        .executeTakeFirstOrThrow()
    ).next_query_at;

  it('closes an Alipay page payment the payer never opened (unknown to Alipay) on expiry, and asks once more after it', async () => {
    const order = await shop.order({ expireInSeconds: 120 });
    const attempt = await shop.submit(order.id, 'alipay_pc');
    shop.t.clock.advance(121_000);
    await jobs().runUntilQuiet();
    expect((await shop.getOrder(order.id)).status).toBe('closed');
    expect((await attemptsOf(order.id)).map((a) => a.status)).toEqual(['closed']);
    // Alipay could not close what it did not know: one last query 60 s after the order's expiry.
    expect(await nextQueryAt(attempt.id)).toEqual(new Date(new Date(order.expireAt).getTime() + MINUTE));
    shop.t.clock.advance(MINUTE);
    expect(await jobs().runUntilQuiet()).toBe(1);
    expect(await nextQueryAt(attempt.id)).toBeNull();
    expect(await shop.events(order.id)).toEqual(['order.closed']);
    shop.t.clock.advance(60 * MINUTE);
    expect(await jobs().runUntilQuiet()).toBe(0);
  });

  it("finds a payment made on an unopened Alipay page after the merchant's close, though its callback is lost", async () => {
    const order = await shop.order({ expireInSeconds: 600 });
    const attempt = await shop.submit(order.id, 'alipay_pc');
    const closed = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(closed.json()).toMatchObject({ status: 'closed' });
    // The payer still had the page: opens it and pays; the notify is lost.
    const page = await fetch(attempt.displayContent);
    await page.arrayBuffer();
    expect(page.status).toBe(200);
    sandbox().callbacks.setMode('drop', 1);
    await shop.pay(attempt.no);
    await shop.settle();
    expect((await shop.getOrder(order.id)).status).toBe('closed');
    // After the order's expiry (and Alipay's time_expire), the last query finds the money.
    shop.t.clock.advance(10 * MINUTE + MINUTE);
    await jobs().runUntilQuiet();
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', channelCode: 'alipay_pc' });
    expect(await shop.events(order.id)).toEqual(['order.closed', 'order.paid']);
    expect(await nextQueryAt(attempt.id)).toBeNull();
  });

  it("closes a merchant's order with a payment in progress at the channel, and finds a paid one paid", async () => {
    const open = await shop.order();
    const attempt = await shop.submit(open.id, 'wx_native');
    const closed = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${open.id}/close`);
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.json().status).toBe('closed');
    expect(sandbox().ledger.find(attempt.no)!.status).toBe('closed');
    const payLate = await shop.t.runtime.http.inject({
      method: 'POST',
      url: `/__sandbox/control/payments/${attempt.no}/pay`,
    });
    expect(payLate.statusCode).toBe(409);

    const paid = await shop.order();
    const paidAttempt = await shop.submit(paid.id, 'alipay_qr');
    sandbox().callbacks.setMode('drop', 1);
    await shop.pay(paidAttempt.no);
    await shop.settle();
    const refused = await shop.t.merchant(shop.app.apiKey, 'POST', `/api/v1/orders/${paid.id}/close`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('order_paid');
    expect(await shop.events(paid.id)).toEqual(['order.paid']);
  });

  it('hands each due attempt to exactly one of several concurrent claims', async () => {
    const order = await shop.order();
    for (let i = 0; i < 12; i++) await shop.submit(order.id, i % 2 === 0 ? 'wx_native' : 'alipay_qr');
    const { db } = shop.t.runtime.database;
    const now = new Date(shop.t.clock.now().getTime() + 61_000);
    const claims = await Promise.all([0, 1, 2].map(() => claimDueAttempts(db, now, 50, [60, 120])));
    const ids = claims.flat().map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const attempt of await attemptsOf(order.id)) expect(ids).toContain(attempt.id);
    for (const attempt of claims.flat()) {
      expect(attempt.next_query_at!.getTime()).toBe(now.getTime() + 120_000);
    }
    // Claimed rows are not due again until their next query.
    expect(await claimDueAttempts(db, now, 50, [60, 120])).toEqual([]);
  });

  it('finishes a refund whose process died after committing it, before calling the provider', async () => {
    const order = await shop.order({ amount: 900 });
    const attempt = await shop.submit(order.id, 'alipay_qr');
    await shop.pay(attempt.no);
    await shop.settle();
    const paid = await shop.getOrder(order.id);
    // What `POST /refunds` commits before its provider call, left behind by a crash.
    const now = shop.t.clock.now();
    await shop.t.runtime.database.db
      .insertInto('refunds')
      .values({
        app_id: shop.app.id,
        order_id: order.id,
        attempt_id: attempt.id,
        merchant_refund_id: 'CRASHED-1',
        no: `R${Date.now()}crash`,
        amount: 400,
        next_query_at: new Date(now.getTime() + 10_000),
        created_at: now,
        updated_at: now,
      })
      .execute();
    expect(paid.refundedAmount).toBe(0);
    shop.t.clock.advance(10_000);
    await jobs().runUntilQuiet();
    expect(await shop.getOrder(order.id)).toMatchObject({ status: 'paid', refundedAmount: 400 });
    expect(sandbox().ledger.find(attempt.no)!.refunds).toEqual([expect.objectContaining({ amount: 400 })]);
    expect(await shop.events(order.id)).toEqual(['order.paid', 'refund.succeeded']);
  });

  it('leaves an expired order claimed by a worker that died alone until its lease ends', async () => {
    const order = await shop.order({ expireInSeconds: 60 });
    await shop.submit(order.id, 'wx_native');
    shop.t.clock.advance(61_000);
    const { db } = shop.t.runtime.database;
    const lease = new Date(shop.t.clock.now().getTime() + 60_000);
    await db.updateTable('orders').set({ expiry_lease_until: lease }).where('id', '=', order.id).execute();
    await jobs().runUntilQuiet();
    expect((await shop.getOrder(order.id)).status).toBe('waiting');
    shop.t.clock.advance(60_000);
    await jobs().runUntilQuiet();
    expect((await shop.getOrder(order.id)).status).toBe('closed');
    expect(await shop.events(order.id)).toEqual(['order.closed']);
  });

  it('never closes or pays an expired order whose channel reports another amount paid, and says so', async () => {
    const order = await shop.order({ amount: 1000, expireInSeconds: 60 });
    const attempt = await shop.submit(order.id, 'wx_native');
    sandbox().callbacks.setMode('drop', 1);
    const paid = await shop.t.runtime.http.inject({
      method: 'POST',
      url: `/__sandbox/control/payments/${attempt.no}/pay`,
      payload: { amount: 1 },
    });
    expect(paid.statusCode).toBe(200);
    shop.t.clock.advance(61_000);
    await jobs().runOnce();
    expect((await shop.getOrder(order.id)).status).toBe('waiting');
    expect((await attemptsOf(order.id)).map((a) => a.status)).toEqual(['waiting']);
    expect(await shop.events(order.id)).toEqual([]);
    expect(shop.t.logs()).toContain(
      `the channel reports attempt ${attempt.no} paid, but the report was refused (amount_mismatch)`,
    );
  });
});
