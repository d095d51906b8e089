import { type SqlBool, sql, type Transaction } from 'kysely';
import type { DB, Executor, RefundKind, RefundRow, RefundStatus } from '../db/schema.js';
import { claimDueQueries } from '../jobs/due-queries.js';

export async function insertRefund(
  trx: Transaction<DB>,
  values: {
    appId: string;
    orderId: string;
    attemptId: string;
    kind: RefundKind;
    merchantRefundId: string | null;
    no: string;
    amount: number;
    reason: string | null;
    /** When the refund job may first pick it up (sending it, or asking about it). */
    nextQueryAt: Date;
    now: Date;
  },
): Promise<RefundRow | undefined> {
  return trx
    .insertInto('refunds')
    .values({
      app_id: values.appId,
      order_id: values.orderId,
      attempt_id: values.attemptId,
      kind: values.kind,
      merchant_refund_id: values.merchantRefundId,
      no: values.no,
      amount: values.amount,
      reason: values.reason,
      next_query_at: values.nextQueryAt,
      created_at: values.now,
      updated_at: values.now,
    })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function findRefund(db: Executor, appId: string, id: string): Promise<RefundRow | undefined> {
  return db
    .selectFrom('refunds')
    .selectAll()
    .where('id', '=', id)
    .where('app_id', '=', appId)
    .executeTakeFirst();
}

export async function findRefundById(db: Executor, id: string): Promise<RefundRow | undefined> {
  return db.selectFrom('refunds').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findRefundByNo(db: Executor, no: string): Promise<RefundRow | undefined> {
  return db.selectFrom('refunds').selectAll().where('no', '=', no).executeTakeFirst();
}

export async function findRefundForUpdate(trx: Transaction<DB>, id: string): Promise<RefundRow | undefined> {
  return trx.selectFrom('refunds').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

export async function findMerchantRefund(
  db: Executor,
  appId: string,
  merchantRefundId: string,
): Promise<RefundRow | undefined> {
  return db
    .selectFrom('refunds')
    .selectAll()
    .where('app_id', '=', appId)
    .where('merchant_refund_id', '=', merchantRefundId)
    .executeTakeFirst();
}

export interface RefundFilter {
  orderId?: string | undefined;
  merchantRefundId?: string | undefined;
  status?: RefundStatus | undefined;
  /** Only refunds with a smaller id (the next page, newest first). */
  before?: string | undefined;
}

export async function listRefunds(
  db: Executor,
  appId: string,
  filter: RefundFilter,
  limit: number,
): Promise<RefundRow[]> {
  let query = db.selectFrom('refunds').selectAll().where('app_id', '=', appId);
  if (filter.orderId !== undefined) query = query.where('order_id', '=', filter.orderId);
  if (filter.merchantRefundId !== undefined)
    query = query.where('merchant_refund_id', '=', filter.merchantRefundId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.before !== undefined) query = query.where('id', '<', filter.before);
  return query.orderBy('id', 'desc').limit(limit).execute();
}

/**
 * Fen of the order's merchant refunds still in flight: waiting at the channel, or failed while the
 * provider holds their money (WeChat ABNORMAL). Either may yet succeed, so a new refund may not count
 * on that money. Read with the order row locked.
 */
export async function sumMerchantRefundsInFlight(trx: Transaction<DB>, orderId: string): Promise<number> {
  const row = await trx
    .selectFrom('refunds')
    .select(sql<string>`coalesce(sum(amount), 0)`.as('fen'))
    .where('order_id', '=', orderId)
    .where('kind', '=', 'merchant')
    .where((eb) => eb.or([eb('status', '=', 'waiting'), eb('held_by_provider', '=', true)]))
    .executeTakeFirstOrThrow();
  return Number(row.fen);
}

/** The channel accepted the refund request: from now on it is asked about, not sent. */
export async function markRefundSubmitted(db: Executor, id: string, now: Date): Promise<void> {
  await db
    .updateTable('refunds')
    .set({ submitted_at: now, updated_at: now })
    .where('id', '=', id)
    .where('submitted_at', 'is', null)
    .execute();
}

/** `waiting → succeeded`, or `failed → succeeded` (a refund the provider held, paid out), guarded. */
export async function markRefundSucceeded(
  trx: Transaction<DB>,
  id: string,
  from: 'waiting' | 'failed',
  values: { channelRefundNo: string | null; succeededAt: Date; now: Date },
): Promise<RefundRow | undefined> {
  return trx
    .updateTable('refunds')
    .set({
      status: 'succeeded',
      channel_refund_no: values.channelRefundNo,
      succeeded_at: values.succeededAt,
      submitted_at: sql`coalesce(submitted_at, ${values.now})`,
      held_by_provider: false,
      next_query_at: null,
      updated_at: values.now,
    })
    .where('id', '=', id)
    .where('status', '=', from)
    .returningAll()
    .executeTakeFirst();
}

/**
 * `waiting → failed`, guarded. `held`: the provider keeps the money for now (WeChat ABNORMAL): the
 * refund stays in flight for the order's balance and the refund job goes on asking about it on its
 * schedule, as while it was waiting.
 */
export async function markRefundFailed(
  trx: Transaction<DB>,
  id: string,
  values: { reason: string; held: boolean; now: Date },
): Promise<RefundRow | undefined> {
  return trx
    .updateTable('refunds')
    .set({
      status: 'failed',
      failure_reason: values.reason,
      failed_at: values.now,
      held_by_provider: values.held,
      next_query_at: values.held ? sql<Date>`coalesce(next_query_at, ${values.now})` : null,
      updated_at: values.now,
    })
    .where('id', '=', id)
    .where('status', '=', 'waiting')
    .returningAll()
    .executeTakeFirst();
}

/** The provider closed a refund it held: its money is the order's to refund again. Guarded. */
export async function releaseHeldRefund(trx: Transaction<DB>, id: string, now: Date): Promise<boolean> {
  const released = await trx
    .updateTable('refunds')
    .set({ held_by_provider: false, next_query_at: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'failed')
    .where('held_by_provider', '=', true)
    .executeTakeFirst();
  return released.numUpdatedRows > 0n;
}

/**
 * Claims the refunds whose next try or query is due (see `claimDueQueries`): the waiting ones, and
 * failed ones whose money the provider still holds (they may yet be paid out).
 */
export async function claimDueRefunds(
  db: Executor,
  now: Date,
  limit: number,
  schedule: readonly number[],
): Promise<RefundRow[]> {
  return claimDueQueries(db, 'refunds', now, limit, schedule, sql<SqlBool>`held_by_provider`);
}
