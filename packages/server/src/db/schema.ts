import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

/**
 * Row types of the tables in migrations/. Both drivers return bigint columns as decimal strings
 * (ids must stay exact), so ids are strings here and amounts are converted at the mapping edge.
 */
type Id = ColumnType<string, never, never>;
type Int8 = ColumnType<string, number | string, number | string>;
type Timestamp = ColumnType<Date, Date, Date>;
type Json<T> = ColumnType<T, string, string>;

export type AppStatus = 'active' | 'disabled';
export type ChannelStatus = 'enabled' | 'disabled';
export type OrderStatus = 'waiting' | 'paid' | 'closed' | 'refunded';
export type AttemptStatus = 'waiting' | 'paid' | 'closed' | 'failed';
export type RefundStatus = 'waiting' | 'succeeded' | 'failed';
/** A merchant's refund, or the one paycenter makes of a duplicate payment. */
export type RefundKind = 'merchant' | 'duplicate_payment';
export type NotifyTaskStatus = 'pending' | 'succeeded' | 'failed';
export type EventType =
  | 'order.paid'
  | 'order.closed'
  | 'order.duplicate_paid'
  | 'refund.succeeded'
  | 'refund.failed';
export type DisplayMode = 'qr_code' | 'url' | 'form' | 'app' | 'jsapi' | 'none';

export interface AppsTable {
  id: Generated<string> & Id;
  name: string;
  status: ColumnType<AppStatus, AppStatus | undefined, AppStatus>;
  notify_url: string;
  return_url: string | null;
  notify_schedule: number[] | null;
  webhook_secret: string;
  auto_refund_duplicates: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: Generated<string> & Id;
  app_id: string;
  prefix: string;
  hash: string;
  created_at: Timestamp;
  revoked_at: Date | null;
}

export interface ChannelsTable {
  id: Generated<string> & Id;
  app_id: string;
  code: string;
  status: ColumnType<ChannelStatus, ChannelStatus | undefined, ChannelStatus>;
  fee_rate: ColumnType<number, number | undefined, number>;
  config: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface OrdersTable {
  id: Generated<string> & Id;
  app_id: string;
  merchant_order_id: string;
  subject: string;
  body: string | null;
  amount: Int8;
  currency: string;
  status: ColumnType<OrderStatus, OrderStatus | undefined, OrderStatus>;
  paid_attempt_id: string | null;
  channel_code: string | null;
  paid_at: Date | null;
  closed_at: Date | null;
  expire_at: Timestamp;
  refunded_amount: ColumnType<string, number | undefined, number | string>;
  notify_url: string | null;
  return_url: string | null;
  client_token: string;
  metadata: Json<Record<string, string>>;
  user_ip: string | null;
  expiry_lease_until: ColumnType<Date | null, Date | null | undefined, Date | null>;
  payer_checked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AttemptsTable {
  id: Generated<string> & Id;
  order_id: string;
  channel_id: string;
  channel_code: string;
  no: string;
  amount: Int8;
  status: ColumnType<AttemptStatus, AttemptStatus | undefined, AttemptStatus>;
  display_mode: DisplayMode | null;
  display_content: string | null;
  channel_trade_no: string | null;
  payer_id: string | null;
  raw_callback: Json<unknown> | null;
  failure_code: string | null;
  failure_message: string | null;
  paid_at: Date | null;
  closed_at: Date | null;
  next_query_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  query_count: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RefundsTable {
  id: Generated<string> & Id;
  app_id: string;
  order_id: string;
  attempt_id: string;
  kind: ColumnType<RefundKind, RefundKind | undefined, RefundKind>;
  merchant_refund_id: string | null;
  no: string;
  amount: Int8;
  reason: string | null;
  status: ColumnType<RefundStatus, RefundStatus | undefined, RefundStatus>;
  channel_refund_no: string | null;
  failure_reason: string | null;
  succeeded_at: Date | null;
  failed_at: Date | null;
  submitted_at: Date | null;
  next_query_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  query_count: ColumnType<number, number | undefined, number>;
  /** Failed for now, the provider keeping the money (WeChat ABNORMAL): still counts as in flight. */
  held_by_provider: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface EventsTable {
  id: Generated<string> & Id;
  app_id: string;
  type: EventType;
  order_id: string | null;
  refund_id: string | null;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
}

export interface NotifyTasksTable {
  id: Generated<string> & Id;
  event_id: string;
  app_id: string;
  url: string;
  status: ColumnType<NotifyTaskStatus, NotifyTaskStatus | undefined, NotifyTaskStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  next_attempt_at: Timestamp;
  locked_until: Date | null;
  locked_by: string | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface NotifyLogsTable {
  id: Generated<string> & Id;
  task_id: string;
  attempt_no: number;
  http_status: number | null;
  response_excerpt: string | null;
  error: string | null;
  duration_ms: number;
  created_at: Timestamp;
}

export interface OutboxTable {
  id: Generated<string> & Id;
  event_id: string;
  published_at: Date | null;
  created_at: Timestamp;
}

export interface DB {
  apps: AppsTable;
  api_keys: ApiKeysTable;
  channels: ChannelsTable;
  orders: OrdersTable;
  attempts: AttemptsTable;
  refunds: RefundsTable;
  events: EventsTable;
  notify_tasks: NotifyTasksTable;
  notify_logs: NotifyLogsTable;
  outbox: OutboxTable;
}

export type AppRow = Selectable<AppsTable>;
export type ChannelRow = Selectable<ChannelsTable>;
export type OrderRow = Selectable<OrdersTable>;
export type NewOrder = Insertable<OrdersTable>;
export type AttemptRow = Selectable<AttemptsTable>;
export type RefundRow = Selectable<RefundsTable>;

/** Where a repository function runs its SQL: the database, or the caller's transaction. */
export type Executor = Kysely<DB> | Transaction<DB>;
