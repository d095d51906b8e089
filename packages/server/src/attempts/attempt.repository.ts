import { type SqlBool, sql, type Transaction } from 'kysely';
import type { AttemptStatus, DB, DisplayMode, Executor } from '../db/schema.js';
import { claimDueQueries } from '../jobs/due-queries.js';

export async function insertAttempt(
  trx: Transaction<DB>,
  values: {
    orderId: string;
    channelId: string;
    channelCode: string;
    no: string;
    amount: number;
    nextQueryAt: Date;
    now: Date;
  },
) {
  return trx
    .insertInto('attempts')
    .values({
      order_id: values.orderId,
      channel_id: values.channelId,
      channel_code: values.channelCode,
      no: values.no,
      amount: values.amount,
      next_query_at: values.nextQueryAt,
      created_at: values.now,
      updated_at: values.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Locks an attempt by its number; lock its order first (`lockOrderOfAttempt`), as every writer does. */
export async function findAttemptByNoForUpdate(trx: Transaction<DB>, no: string) {
  return trx.selectFrom('attempts').selectAll().where('no', '=', no).forUpdate().executeTakeFirst();
}

export async function findAttempt(db: Executor, orderId: string, id: string) {
  return db
    .selectFrom('attempts')
    .selectAll()
    .where('id', '=', id)
    .where('order_id', '=', orderId)
    .executeTakeFirst();
}

export async function listAttempts(db: Executor, orderId: string) {
  return db.selectFrom('attempts').selectAll().where('order_id', '=', orderId).orderBy('id').execute();
}

/** Records what the channel asked the payer to do; only while the attempt is still waiting. */
export async function setAttemptDisplay(
  db: Executor,
  id: string,
  mode: DisplayMode,
  content: string,
  now: Date,
) {
  return db
    .updateTable('attempts')
    .set({ display_mode: mode, display_content: content, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'waiting')
    .returningAll()
    .executeTakeFirst();
}

/** `waiting → failed`: the channel refused the submission or could not be reached. */
export async function failWaitingAttempt(
  db: Executor,
  id: string,
  failure: { code: string; message: string },
  now: Date,
) {
  return db
    .updateTable('attempts')
    .set({ status: 'failed', failure_code: failure.code, failure_message: failure.message, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'waiting')
    .returningAll()
    .executeTakeFirst();
}

/** `from → paid`, guarded by the status read under the row lock. */
export async function markAttemptPaid(
  trx: Transaction<DB>,
  attempt: { id: string; orderId: string; from: AttemptStatus },
  values: { channelTradeNo: string | null; payerId: string | null; paidAt: Date; raw: unknown; now: Date },
) {
  // The order's other waiting attempts are due for a query at once, in the same statement: an old
  // QR code of a paid order is closed at its channel within a job interval, before a payer uses it.
  return trx
    .with('hurried', (db) =>
      db
        .updateTable('attempts')
        .set({ next_query_at: values.now })
        .where('order_id', '=', attempt.orderId)
        .where('status', '=', 'waiting')
        .where('id', '!=', attempt.id),
    )
    .updateTable('attempts')
    .set({
      status: 'paid',
      channel_trade_no: values.channelTradeNo,
      payer_id: values.payerId,
      paid_at: values.paidAt,
      raw_callback: JSON.stringify(values.raw),
      next_query_at: null,
      updated_at: values.now,
    })
    .where('id', '=', attempt.id)
    .where('status', '=', attempt.from)
    .returningAll()
    .executeTakeFirst();
}

/** `waiting → closed`: the channel says this payment can no longer be paid. */
export async function closeWaitingAttempt(trx: Transaction<DB>, id: string, now: Date) {
  return trx
    .updateTable('attempts')
    .set({ status: 'closed', closed_at: now, next_query_at: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'waiting')
    .returningAll()
    .executeTakeFirst();
}

/** How many attempts an order has had (the paying browser may start at most a few). */
export async function countAttempts(db: Executor, orderId: string): Promise<number> {
  const row = await db
    .selectFrom('attempts')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('order_id', '=', orderId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** An order's attempts still waiting at their channel, newest first. */
export async function listWaitingAttempts(db: Executor, orderId: string, limit: number) {
  return db
    .selectFrom('attempts')
    .selectAll()
    .where('order_id', '=', orderId)
    .where('status', '=', 'waiting')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/**
 * Claims the attempts whose next query is due (see `claimDueQueries`): the waiting ones, and closed
 * ones awaiting their last query (`scheduleLastQuery`).
 */
export async function claimDueAttempts(db: Executor, now: Date, limit: number, schedule: readonly number[]) {
  return claimDueQueries(db, 'attempts', now, limit, schedule, sql<SqlBool>`status = 'closed'`);
}

/**
 * A closed attempt its channel did not know when it was closed may still be opened and paid until
 * its order's expiry (the payment's time_expire): one last query `delaySeconds` after that.
 */
export async function scheduleLastQuery(db: Executor, id: string, delaySeconds: number): Promise<void> {
  await db
    .updateTable('attempts')
    .set({
      next_query_at: (eb) =>
        sql<Date>`${eb.selectFrom('orders').select('expire_at').whereRef('orders.id', '=', 'attempts.order_id')} + make_interval(secs => ${delaySeconds})`,
    })
    .where('id', '=', id)
    .where('status', '=', 'closed')
    .execute();
}

/** The last query of a closed attempt was made (and found nothing to apply): no more. */
export async function endLastQuery(db: Executor, id: string): Promise<void> {
  await db
    .updateTable('attempts')
    .set({ next_query_at: null })
    .where('id', '=', id)
    .where('status', '=', 'closed')
    .execute();
}
