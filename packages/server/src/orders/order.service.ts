import { isIP } from 'node:net';
import type { Kysely } from 'kysely';
import type { MerchantPrincipal } from '../apps/app.service.js';
import type { PaymentSync } from '../attempts/payment-sync.js';
import type { Clock } from '../clock.js';
import { newClientToken } from '../crypto/tokens.js';
import type { DB, OrderRow, OrderStatus } from '../db/schema.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { checkHttpUrl, isRowId } from '../validation.js';
import * as repo from './order.repository.js';

/** An order as the merchant API, webhooks and events show it. Money in fen, ids as strings. */
export interface OrderView {
  id: string;
  appId: string;
  merchantOrderId: string;
  subject: string;
  body: string | null;
  amount: number;
  currency: string;
  status: OrderStatus;
  refundedAmount: number;
  expireAt: string;
  notifyUrl: string | null;
  returnUrl: string | null;
  metadata: Record<string, string>;
  clientToken: string;
  channelCode: string | null;
  createdAt: string;
  paidAt: string | null;
  closedAt: string | null;
}

export interface CreateOrderInput {
  merchantOrderId: string;
  subject: string;
  amount: number;
  currency?: string | undefined;
  body?: string | undefined;
  expireInSeconds?: number | undefined;
  notifyUrl?: string | undefined;
  returnUrl?: string | undefined;
  metadata?: Record<string, string> | undefined;
  userIp?: string | undefined;
}

export const ORDER_LIMITS = {
  merchantOrderId: /^[A-Za-z0-9_-]{1,64}$/,
  subjectMax: 128,
  bodyMax: 1000,
  amountMax: 100_000_000_000,
  expireMinSeconds: 60,
  expireMaxSeconds: 86_400,
  expireDefaultSeconds: 7_200,
  metadataMaxKeys: 20,
  metadataKeyMax: 40,
  metadataValueMax: 500,
} as const;

export function toOrderView(row: OrderRow): OrderView {
  return {
    id: row.id,
    appId: row.app_id,
    merchantOrderId: row.merchant_order_id,
    subject: row.subject,
    body: row.body,
    amount: Number(row.amount),
    currency: row.currency,
    status: row.status,
    refundedAmount: Number(row.refunded_amount),
    expireAt: row.expire_at.toISOString(),
    notifyUrl: row.notify_url,
    returnUrl: row.return_url,
    metadata: row.metadata,
    clientToken: row.client_token,
    channelCode: row.channel_code,
    createdAt: row.created_at.toISOString(),
    paidAt: row.paid_at?.toISOString() ?? null,
    closedAt: row.closed_at?.toISOString() ?? null,
  };
}

function checkCreateInput(input: CreateOrderInput): void {
  if (!ORDER_LIMITS.merchantOrderId.test(input.merchantOrderId)) {
    throw invalidRequest('merchantOrderId', 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -');
  }
  if (input.subject.trim().length === 0 || input.subject.length > ORDER_LIMITS.subjectMax) {
    throw invalidRequest('subject', `must be 1 to ${ORDER_LIMITS.subjectMax} characters`);
  }
  if (!Number.isSafeInteger(input.amount) || input.amount < 1 || input.amount > ORDER_LIMITS.amountMax) {
    throw invalidRequest('amount', `must be a whole number of fen from 1 to ${ORDER_LIMITS.amountMax}`);
  }
  if (input.currency !== undefined && input.currency !== 'CNY') {
    throw invalidRequest('currency', 'only CNY is supported by the WeChat Pay and Alipay channels');
  }
  const expire = input.expireInSeconds;
  if (
    expire !== undefined &&
    (!Number.isInteger(expire) ||
      expire < ORDER_LIMITS.expireMinSeconds ||
      expire > ORDER_LIMITS.expireMaxSeconds)
  ) {
    throw invalidRequest(
      'expireInSeconds',
      `must be a whole number of seconds from ${ORDER_LIMITS.expireMinSeconds} to ${ORDER_LIMITS.expireMaxSeconds}`,
    );
  }
  if (input.body !== undefined && input.body.length > ORDER_LIMITS.bodyMax) {
    throw invalidRequest('body', `must be at most ${ORDER_LIMITS.bodyMax} characters`);
  }
  if (input.notifyUrl !== undefined) checkHttpUrl('notifyUrl', input.notifyUrl);
  if (input.returnUrl !== undefined) checkHttpUrl('returnUrl', input.returnUrl);
  if (input.userIp !== undefined && isIP(input.userIp) === 0)
    throw invalidRequest('userIp', 'must be an IPv4 or IPv6 address');
  const metadata = input.metadata ?? {};
  const keys = Object.keys(metadata);
  if (keys.length > ORDER_LIMITS.metadataMaxKeys) {
    throw invalidRequest('metadata', `must have at most ${ORDER_LIMITS.metadataMaxKeys} keys`);
  }
  for (const key of keys) {
    if (key.length < 1 || key.length > ORDER_LIMITS.metadataKeyMax) {
      throw invalidRequest('metadata', `keys must be 1 to ${ORDER_LIMITS.metadataKeyMax} characters`);
    }
    const value = metadata[key];
    if (typeof value !== 'string' || value.length > ORDER_LIMITS.metadataValueMax) {
      throw invalidRequest(
        `metadata.${key}`,
        `must be a string of at most ${ORDER_LIMITS.metadataValueMax} characters`,
      );
    }
  }
}

/** What makes two create requests "the same order" for idempotency. */
function conflictingFields(existing: OrderRow, input: CreateOrderInput): string[] {
  const fields: string[] = [];
  if (Number(existing.amount) !== input.amount) fields.push('amount');
  if (existing.currency !== (input.currency ?? 'CNY')) fields.push('currency');
  if (existing.subject !== input.subject) fields.push('subject');
  return fields;
}

export class OrderService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly clock: Clock,
    private readonly payments: PaymentSync,
  ) {}

  /** Creates the order, or returns the existing one for a repeated request (`created: false`). */
  async create(
    principal: MerchantPrincipal,
    input: CreateOrderInput,
  ): Promise<{ order: OrderView; created: boolean }> {
    checkCreateInput(input);
    const now = this.clock.now();
    const expireInSeconds = input.expireInSeconds ?? ORDER_LIMITS.expireDefaultSeconds;
    const inserted = await repo.insertOrderIfNew(this.db, {
      app_id: principal.appId,
      merchant_order_id: input.merchantOrderId,
      subject: input.subject,
      body: input.body ?? null,
      amount: input.amount,
      currency: input.currency ?? 'CNY',
      expire_at: new Date(now.getTime() + expireInSeconds * 1000),
      notify_url: input.notifyUrl ?? null,
      return_url: input.returnUrl ?? null,
      client_token: newClientToken(),
      metadata: JSON.stringify(input.metadata ?? {}),
      user_ip: input.userIp ?? null,
      created_at: now,
      updated_at: now,
    });
    if (inserted) return { order: toOrderView(inserted), created: true };

    const existing = await repo.findOrderByMerchantId(this.db, principal.appId, input.merchantOrderId);
    if (!existing) throw new Error(`order ${input.merchantOrderId} conflicted on insert but cannot be read`);
    const differing = conflictingFields(existing, input);
    if (differing.length > 0) {
      throw new AppError(
        'order_conflict',
        `an order with merchantOrderId "${input.merchantOrderId}" already exists with a different ${differing.join(', ')}`,
        { details: { orderId: existing.id, fields: differing } },
      );
    }
    return { order: toOrderView(existing), created: false };
  }

  async get(principal: MerchantPrincipal, id: string): Promise<OrderView> {
    const row = isRowId(id) ? await repo.findOrder(this.db, principal.appId, id) : undefined;
    if (!row) throw notFound('order');
    return toOrderView(row);
  }

  async list(
    principal: MerchantPrincipal,
    filter: {
      merchantOrderId?: string | undefined;
      status?: OrderStatus | undefined;
      before?: string | undefined;
    },
    limit: number,
  ): Promise<{ data: OrderView[]; hasMore: boolean }> {
    if (filter.before !== undefined && !isRowId(filter.before))
      throw invalidRequest('before', 'must be an order id');
    const rows = await repo.listOrders(this.db, principal.appId, filter, limit + 1);
    return { data: rows.slice(0, limit).map(toOrderView), hasMore: rows.length > limit };
  }

  /**
   * Closes a waiting order: its open attempts are closed at their channels first (a payment found
   * there wins: the order is paid, and this answers 409 order_paid), then `waiting → closed` with
   * `order.closed`. Closing a closed order answers with it unchanged; a paid one cannot be closed.
   */
  async close(principal: MerchantPrincipal, id: string): Promise<OrderView> {
    const order = isRowId(id) ? await repo.findOrder(this.db, principal.appId, id) : undefined;
    if (!order) throw notFound('order');
    if (order.status === 'closed') return toOrderView(order);
    if (order.status === 'waiting') {
      const { order: after } = await this.payments.closeOrder(order.id);
      if (after.status === 'closed') return toOrderView(after);
      throw new AppError(
        'order_paid',
        'this order was paid at the channel before it could be closed; refund it instead',
        {
          details: { orderId: after.id },
        },
      );
    }
    throw new AppError('order_paid', 'this order is paid and cannot be closed; refund it instead');
  }
}
