import type { RefundKind, RefundRow, RefundStatus } from '../db/schema.js';

/** A refund as the merchant API and the `refund.*` webhooks show it. Money in fen, ids as strings. */
export interface RefundView {
  id: string;
  orderId: string;
  attemptId: string;
  /** `merchant`: asked for by the merchant; `duplicate_payment`: paycenter returning a second payment. */
  kind: RefundKind;
  /** The merchant's id for the refund; null for a duplicate-payment refund. */
  merchantRefundId: string | null;
  /** Sent to the channel as out_refund_no. */
  no: string;
  amount: number;
  reason: string | null;
  status: RefundStatus;
  channelRefundNo: string | null;
  failureReason: string | null;
  createdAt: string;
  succeededAt: string | null;
  failedAt: string | null;
}

export function toRefundView(row: RefundRow): RefundView {
  return {
    id: row.id,
    orderId: row.order_id,
    attemptId: row.attempt_id,
    kind: row.kind,
    merchantRefundId: row.merchant_refund_id,
    no: row.no,
    amount: Number(row.amount),
    reason: row.reason,
    status: row.status,
    channelRefundNo: row.channel_refund_no,
    failureReason: row.failure_reason,
    createdAt: row.created_at.toISOString(),
    succeededAt: row.succeeded_at?.toISOString() ?? null,
    failedAt: row.failed_at?.toISOString() ?? null,
  };
}
