import { sql, type Transaction } from 'kysely';
import type { DB, Executor, NewOrder, OrderRow, OrderStatus } from '../db/schema.js';

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

/**
 * Locks the order of the attempt numbered `attemptNo` (an attempt's order never changes), so a
 * channel's report takes the order's lock first, as closing an order does, without reading the
 * attempt beforehand. Undefined: no such attempt.
 */
export async function lockOrderOfAttempt(
  trx: Transaction<DB>,
  attemptNo: string,
): Promise<OrderRow | undefined> {
  return trx
    .selectFrom('orders')
    .selectAll()
    .where('id', '=', (eb) => eb.selectFrom('attempts').select('order_id').where('no', '=', attemptNo))
    .forUpdate()
    .executeTakeFirst();
}

/** Holds the order against a concurrent close while an attempt is added. */
export async function findOrderByIdForShare(trx: Transaction<DB>, id: string): Promise<OrderRow | undefined> {
  return trx.selectFrom('orders').selectAll().where('id', '=', id).forShare().executeTakeFirst();
}

/** An order by id alone, for the paying browser (which proves itself with the order's client token). */
export async function findOrderById(db: Executor, id: string): Promise<OrderRow | undefined> {
  return db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * `id = any($1)`: one statement text (so one prepared statement per connection) however many ids,
 * where `id in ($1, …, $n)` would prepare one per count.
 */
function idIsAny(ids: readonly string[]) {
  return sql<boolean>`id = any(${[...ids]}::bigint[])`;
}

/** Orders by id: the live-status feed re-reading what it watches, the jobs reading their rows' orders. */
export async function findOrdersByIds(db: Executor, ids: readonly string[]): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('orders').selectAll().where(idIsAny(ids)).execute();
}

/** Just the statuses of these orders, for the live-status feed's sweep. */
export async function findOrderStatuses(
  db: Executor,
  ids: readonly string[],
): Promise<{ id: string; status: OrderStatus }[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('orders').select(['id', 'status']).where(idIsAny(ids)).execute();
}

/**
 * Counts a succeeded refund: `refunded_amount` grows, and `paid → refunded` when it reaches the
 * amount. Guarded by `paid`; the table's check keeps the sum within the amount.
 */
export async function addRefundedAmount(
  trx: Transaction<DB>,
  id: string,
  fen: number,
  now: Date,
): Promise<OrderRow | undefined> {
  return trx
    .updateTable('orders')
    .set(() => ({
      refunded_amount: sql<string>`refunded_amount + ${fen}`,
      status: sql<OrderStatus>`CASE WHEN refunded_amount + ${fen} >= amount THEN 'refunded' ELSE status END`,
      updated_at: now,
    }))
    .where('id', '=', id)
    .where('status', '=', 'paid')
    .returningAll()
    .executeTakeFirst();
}

/**
 * Claims up to `limit` waiting orders past their expiry for one worker, for `leaseSeconds`: the
 * expiry job then closes their attempts at the channels and the orders. Skips rows another worker
 * holds; a worker that dies leaves its orders claimable again when the lease ends.
 */
export async function claimExpiredOrders(
  db: Executor,
  now: Date,
  limit: number,
  leaseSeconds: number,
): Promise<OrderRow[]> {
  return db
    .updateTable('orders')
    .set({ expiry_lease_until: new Date(now.getTime() + leaseSeconds * 1000) })
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('orders')
        .select('id')
        .where('status', '=', 'waiting')
        .where('expire_at', '<=', now)
        .where((w) => w.or([w('expiry_lease_until', 'is', null), w('expiry_lease_until', '<=', now)]))
        .orderBy('expire_at')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .execute();
}

/**
 * Takes the order's "I have paid" turn: sets `payer_checked_at` to `now` only if the last check is at
 * least `intervalMs` old (or there was none). One guarded statement, so every instance shares the
 * throttle. Returns null when the turn was taken, else when the last check was (a concurrent winner's
 * time when two race).
 */
export async function takePayerCheckTurn(
  db: Executor,
  id: string,
  now: Date,
  intervalMs: number,
): Promise<Date | null> {
  const due = new Date(now.getTime() - intervalMs);
  const taken = await db
    .updateTable('orders')
    .set({ payer_checked_at: now })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('payer_checked_at', 'is', null), eb('payer_checked_at', '<=', due)]))
    .returning('id')
    .executeTakeFirst();
  if (taken) return null;
  const row = await db
    .selectFrom('orders')
    .select('payer_checked_at')
    .where('id', '=', id)
    .executeTakeFirst();
  return row?.payer_checked_at ?? now;
}
