import { type Kysely, sql } from 'kysely';

/**
 * A last query for attempts closed while their channel did not know them yet (an Alipay page or
 * wap payment the payer had not opened): the payer may still open and pay it until its time_expire,
 * so such a closed attempt keeps a `next_query_at` just after its order's expiry, and the payment
 * query job asks once more then. This index finds those few among the closed attempts.
 * Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX attempts_last_query_due_idx ON attempts (next_query_at)
    WHERE status = 'closed' AND next_query_at IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS attempts_last_query_due_idx`.execute(db);
}
