import type { Kysely } from 'kysely';
import { findApp } from '../apps/app.repository.js';
import type { TradeSnapshot } from '../channels/channel-client.js';
import { newChannelNo } from '../channels/channel-no.js';
import type { Clock } from '../clock.js';
import type { DB } from '../db/schema.js';
import { recordEvent } from '../events/event.repository.js';
import * as orderRepo from '../orders/order.repository.js';
import { toOrderView } from '../orders/order.service.js';
import { announceOrderChange } from '../realtime/order-changes.js';
import { insertRefund } from '../refunds/refund.repository.js';
import { toRefundView } from '../refunds/refund.view.js';
import * as repo from './attempt.repository.js';
import { toAttemptView } from './attempt.view.js';

export type ApplyResult =
  /** The outcome changed our books; `taskIds` are the webhook tasks it wrote. */
  | {
      result: 'applied';
      change: 'paid' | 'paid_after_close' | 'duplicate_paid' | 'attempt_closed';
      taskIds: string[];
    }
  /** We already knew (a repeated callback, a query after the callback): nothing changed. */
  | { result: 'unchanged' }
  /** The outcome contradicts what we sent the channel: never applied. */
  | {
      result: 'rejected';
      reason: 'unknown_attempt' | 'channel_mismatch' | 'amount_mismatch' | 'amount_unknown';
    };

/**
 * The one place a channel's word about a payment changes our books. A callback, the synchronous
 * answer of a bar-code payment, a query and the expiry job all come through here, so the order in
 * which they arrive cannot matter: each transition is guarded by the state read under the row
 * locks, and a second report of the same fact finds nothing left to change.
 *
 * Locks: the order first, then the attempt (the same order as closing an order), so concurrent
 * reports and closes queue instead of deadlocking.
 *
 * After the commit (never inside the transaction) an applied change is announced to this process's
 * live-status feed (`realtime/order-changes.ts`), which tells the paying browsers.
 */
export async function applyTrade(
  db: Kysely<DB>,
  clock: Clock,
  input: { channelId: string; trade: TradeSnapshot },
): Promise<ApplyResult> {
  const { trade } = input;
  if (trade.state === 'waiting' || trade.state === 'not_found') return { result: 'unchanged' };
  const now = clock.now();
  let orderId: string | undefined;

  const outcome = await db.transaction().execute(async (trx): Promise<ApplyResult> => {
    const order = await orderRepo.lockOrderOfAttempt(trx, trade.outTradeNo);
    if (!order) return { result: 'rejected', reason: 'unknown_attempt' };
    orderId = order.id;
    const attempt = await repo.findAttemptByNoForUpdate(trx, trade.outTradeNo);
    if (!attempt) throw new Error(`attempt ${trade.outTradeNo} of order ${order.id} vanished`);
    // A report that contradicts what we sent is refused before anything is written (the
    // transaction then commits nothing).
    if (attempt.channel_id !== input.channelId) return { result: 'rejected', reason: 'channel_mismatch' };
    if (trade.state === 'paid') {
      if (trade.amount === null) return { result: 'rejected', reason: 'amount_unknown' };
      if (trade.amount !== Number(attempt.amount)) return { result: 'rejected', reason: 'amount_mismatch' };
    }

    if (trade.state === 'closed') {
      const closed = await repo.closeWaitingAttempt(trx, attempt.id, now);
      return closed ? { result: 'applied', change: 'attempt_closed', taskIds: [] } : { result: 'unchanged' };
    }

    if (attempt.status === 'paid') return { result: 'unchanged' };
    const paidAttempt = await repo.markAttemptPaid(
      trx,
      { id: attempt.id, orderId: order.id, from: attempt.status },
      {
        channelTradeNo: trade.channelTradeNo,
        payerId: trade.payerId,
        paidAt: trade.paidAt ?? now,
        raw: trade.raw,
        now,
      },
    );
    if (!paidAttempt) throw new Error(`attempt ${attempt.id} changed while locked`);

    const channel = { channelId: attempt.channel_id, channelCode: attempt.channel_code };
    if (order.status === 'waiting' || order.status === 'closed') {
      const paid = await orderRepo.markOrderPaid(trx, order.id, order.status, {
        attemptId: attempt.id,
        channelCode: attempt.channel_code,
        paidAt: paidAttempt.paid_at ?? now,
        now,
      });
      if (!paid) throw new Error(`order ${order.id} changed while locked`);
      const { taskId } = await recordEvent(trx, {
        appId: paid.app_id,
        type: 'order.paid',
        orderId: paid.id,
        data: { ...toOrderView(paid) },
        notifyUrl: paid.notify_url,
        channel,
        now,
      });
      return {
        result: 'applied',
        change: order.status === 'closed' ? 'paid_after_close' : 'paid',
        taskIds: [taskId],
      };
    }

    // The order was already paid through another attempt: the payer paid twice (an old QR code).
    // The money is real; record it, tell the merchant, and (unless the app said not to) give it back.
    const app = await findApp(trx, order.app_id);
    if (!app) throw new Error(`app ${order.app_id} of order ${order.id} vanished`);
    const refund = app.auto_refund_duplicates
      ? await insertRefund(trx, {
          appId: order.app_id,
          orderId: order.id,
          attemptId: paidAttempt.id,
          kind: 'duplicate_payment',
          merchantRefundId: null,
          no: newChannelNo('R', now),
          amount: Number(paidAttempt.amount),
          reason: 'duplicate payment',
          // Due at once: the refund job sends it to the channel.
          nextQueryAt: now,
          now,
        })
      : undefined;
    const { taskId } = await recordEvent(trx, {
      appId: order.app_id,
      type: 'order.duplicate_paid',
      orderId: order.id,
      data: {
        ...toOrderView(order),
        duplicateAttempt: toAttemptView(paidAttempt),
        autoRefund: refund ? toRefundView(refund) : null,
      },
      notifyUrl: order.notify_url,
      channel,
      now,
    });
    return { result: 'applied', change: 'duplicate_paid', taskIds: [taskId] };
  });
  if (outcome.result === 'applied' && orderId !== undefined) announceOrderChange(db, orderId);
  return outcome;
}
