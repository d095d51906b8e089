import type { AttemptRow, AttemptStatus, DisplayMode } from '../db/schema.js';

/** An attempt as the merchant API shows it. */
export interface AttemptView {
  id: string;
  orderId: string;
  no: string;
  channelCode: string;
  status: AttemptStatus;
  amount: number;
  displayMode: DisplayMode | null;
  displayContent: string | null;
  channelTradeNo: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  createdAt: string;
  paidAt: string | null;
}

export function toAttemptView(row: AttemptRow): AttemptView {
  return {
    id: row.id,
    orderId: row.order_id,
    no: row.no,
    channelCode: row.channel_code,
    status: row.status,
    amount: Number(row.amount),
    displayMode: row.display_mode,
    displayContent: row.display_content,
    channelTradeNo: row.channel_trade_no,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    createdAt: row.created_at.toISOString(),
    paidAt: row.paid_at?.toISOString() ?? null,
  };
}
