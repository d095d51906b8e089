import type { Kysely } from 'kysely';
import type { RefundSnapshot } from '../channels/channel-client.js';
import type { Clock } from '../clock.js';
import type { DB } from '../db/schema.js';
import { recordEvent } from '../events/event.repository.js';
import * as orderRepo from '../orders/order.repository.js';
import { announceOrderChange } from '../realtime/order-changes.js';
import * as repo from './refund.repository.js';
import { toRefundView } from './refund.view.js';

export type RefundApplyResult =
  | { result: 'applied'; change: 'succeeded' | 'failed'; taskIds: string[] }
  /** Still processing, or we already knew. */
  | { result: 'unchanged' }
  /** The report contradicts what we asked the channel for: never applied. */
  | {
      result: 'rejected';
      reason: 'unknown_refund' | 'channel_mismatch' | 'trade_mismatch' | 'amount_mismatch';
    };

/**
 * The one place a channel's word about a refund changes our books: the refund call's own answer,
 * WeChat's refund callback and the refund query all come through here, so their order cannot
 * matter. `waiting → succeeded` adds the amount to the order (a merchant refund; a duplicate-payment
 * refund returns money the order never counted) and emits `refund.succeeded`; `waiting → failed`
 * emits `refund.failed` with the channel's reason; `failed → succeeded` when the provider finishes a
 * refund it had reported abnormal. Order row first, then the refund, as everywhere.
 */
export async function applyRefund(
  db: Kysely<DB>,
  clock: Clock,
  input: {
    /** The channel the report came through (callbacks); null when we asked it ourselves. */
    channelId: string | null;
    /** The payment the report names, when it names one (callbacks). */
    outTradeNo: string | null;
    refund: RefundSnapshot;
  },
): Promise<RefundApplyResult> {
  const { refund: report } = input;
  const found = await repo.findRefundByNo(db, report.outRefundNo);
  if (!found) return { result: 'rejected', reason: 'unknown_refund' };
  const attempt = await db
    .selectFrom('attempts')
    .select(['channel_id', 'channel_code', 'no'])
    .where('id', '=', found.attempt_id)
    .executeTakeFirstOrThrow();
  if (input.channelId !== null && attempt.channel_id !== input.channelId) {
    return { result: 'rejected', reason: 'channel_mismatch' };
  }
  if (input.outTradeNo !== null && attempt.no !== input.outTradeNo) {
    return { result: 'rejected', reason: 'trade_mismatch' };
  }
  if (report.state === 'processing' || report.state === 'not_found') return { result: 'unchanged' };
  const failing = report.state === 'failed' || report.state === 'held';
  if (report.state === 'succeeded' && report.amount !== null && report.amount !== Number(found.amount)) {
    return { result: 'rejected', reason: 'amount_mismatch' };
  }
  const now = clock.now();

  const outcome = await db.transaction().execute(async (trx): Promise<RefundApplyResult> => {
    const order = await orderRepo.findOrderByIdForUpdate(trx, found.order_id);
    const refund = await repo.findRefundForUpdate(trx, found.id);
    if (!order || !refund) throw new Error(`refund ${found.id} or its order vanished`);
    // Final, except for a refund the provider held (WeChat ABNORMAL, failed here with its money still
    // counted in flight): paid out once the merchant reroutes it, or closed, which frees the money.
    if (refund.status === 'succeeded') return { result: 'unchanged' };
    if (refund.status === 'failed' && report.state !== 'succeeded') {
      if (report.state === 'failed' && refund.held_by_provider)
        await repo.releaseHeldRefund(trx, refund.id, now);
      return { result: 'unchanged' };
    }
    const changed = failing
      ? await repo.markRefundFailed(trx, refund.id, {
          reason: failureText(report),
          held: report.state === 'held',
          now,
        })
      : await repo.markRefundSucceeded(trx, refund.id, refund.status, {
          channelRefundNo: report.channelRefundNo,
          succeededAt: report.finishedAt ?? now,
          now,
        });
    if (!changed) throw new Error(`refund ${refund.id} changed while locked`);
    if (!failing && changed.kind === 'merchant') {
      const counted = await orderRepo.addRefundedAmount(trx, order.id, Number(changed.amount), now);
      if (!counted) throw new Error(`order ${order.id} is ${order.status}; refund ${refund.id} cannot count`);
    }
    const { taskId } = await recordEvent(trx, {
      appId: changed.app_id,
      type: failing ? 'refund.failed' : 'refund.succeeded',
      orderId: changed.order_id,
      refundId: changed.id,
      data: { ...toRefundView(changed) },
      notifyUrl: order.notify_url,
      channel: { channelId: attempt.channel_id, channelCode: attempt.channel_code },
      now,
    });
    return { result: 'applied', change: failing ? 'failed' : 'succeeded', taskIds: [taskId] };
  });
  if (outcome.result === 'applied') announceOrderChange(db, found.order_id);
  return outcome;
}

/** The provider's code first (what support searches for), then its explanation. */
function failureText(report: RefundSnapshot): string {
  const { providerState, failureReason } = report;
  if (failureReason === null || failureReason === providerState) return providerState;
  return failureReason.startsWith(providerState) ? failureReason : `${providerState}: ${failureReason}`;
}
