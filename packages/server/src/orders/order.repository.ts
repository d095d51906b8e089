import type { Transaction } from 'kysely';
import type { Executor } from '../apps/app.repository.js';
import type { DB, NewOrder, OrderRow, OrderStatus } from '../db/schema.js';

/** Inserts unless the merchant order id is taken; `undefined` means it was (the caller reads the existing one). */
export async function insertOrderIfNew(db: Executor, values: NewOrder): Promise<OrderRow | undefined> {
  return db
    .insertInto('orders')
    .values(values)
    .onConflict((oc) => oc.columns(['app_id', 'merchant_order_id']).doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function findOrder(db: Executor, appId: string, id: string): Promise<OrderRow | undefined> {
  return db
    .selectFrom('orders')
    .selectAll()
    .where('id', '=', id)
    .where('app_id', '=', appId)
    .executeTakeFirst();
}

export async function findOrderForUpdate(
  trx: Transaction<DB>,
  appId: string,
  id: string,
): Promise<OrderRow | undefined> {
  return trx
    .selectFrom('orders')
    .selectAll()
    .where('id', '=', id)
    .where('app_id', '=', appId)
    .forUpdate()
    .executeTakeFirst();
}

export async function findOrderByMerchantId(
  db: Executor,
  appId: string,
  merchantOrderId: string,
): Promise<OrderRow | undefined> {
  return db
    .selectFrom('orders')
    .selectAll()
    .where('app_id', '=', appId)
    .where('merchant_order_id', '=', merchantOrderId)
    .executeTakeFirst();
}

export async function listOrders(
  db: Executor,
  appId: string,
  filter: {
    merchantOrderId?: string | undefined;
    status?: OrderStatus | undefined;
    before?: string | undefined;
  },
  limit: number,
): Promise<OrderRow[]> {
  let query = db.selectFrom('orders').selectAll().where('app_id', '=', appId);
  if (filter.merchantOrderId !== undefined)
    query = query.where('merchant_order_id', '=', filter.merchantOrderId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.before !== undefined) query = query.where('id', '<', filter.before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

export async function countOpenAttempts(trx: Transaction<DB>, orderId: string): Promise<number> {
  const row = await trx
    .selectFrom('attempts')
    .select((eb) => eb.fn.countAll<string>().as('open'))
    .where('order_id', '=', orderId)
    .where('status', '=', 'waiting')
    .executeTakeFirstOrThrow();
  return Number(row.open);
}

/** `waiting → closed`, guarded: no row back means the order was no longer waiting. */
export async function closeWaitingOrder(
  trx: Transaction<DB>,
  id: string,
  now: Date,
): Promise<OrderRow | undefined> {
  return trx
    .updateTable('orders')
    .set({ status: 'closed', closed_at: now, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'waiting')
    .returningAll()
    .executeTakeFirst();
}

/**
 * `waiting → paid`, or `closed → paid` when money arrived for an order we had already closed: the
 * payer paid, and that is the truth. No row back means someone else moved the order first.
 */
export async function markOrderPaid(
  trx: Transaction<DB>,
  id: string,
  from: 'waiting' | 'closed',
  values: { attemptId: string; channelCode: string; paidAt: Date; now: Date },
): Promise<OrderRow | undefined> {
  return trx
    .updateTable('orders')
    .set({
      status: 'paid',
      paid_attempt_id: values.attemptId,
      channel_code: values.channelCode,
      paid_at: values.paidAt,
      updated_at: values.now,
    })
    .where('id', '=', id)
    .where('status', '=', from)
    .returningAll()
    .executeTakeFirst();
}

export async function findOrderByIdForUpdate(
  trx: Transaction<DB>,
  id: string,
): Promise<OrderRow | undefined> {
  return trx.selectFrom('orders').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/** Holds the order against a concurrent close while an attempt is added. */
export async function findOrderByIdForShare(trx: Transaction<DB>, id: string): Promise<OrderRow | undefined> {
  return trx.selectFrom('orders').selectAll().where('id', '=', id).forShare().executeTakeFirst();
}

/** An order by id alone, for the paying browser (which proves itself with the order's client token). */
export async function findOrderById(db: Executor, id: string): Promise<OrderRow | undefined> {
  return db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Orders by id, for the live-status feed re-reading the orders it watches. */
export async function findOrdersByIds(db: Executor, ids: readonly string[]): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('orders').selectAll().where('id', 'in', ids).execute();
}
