import { type Kysely, sql } from 'kysely';

/**
 * `refunds.held_by_provider`: a refund the provider refused for now while keeping its money (WeChat
 * `ABNORMAL`: the payer's card cannot take it, and the merchant reroutes it in the merchant console).
 * It is `failed` here, but its amount stays out of what the order can still refund, and the refund
 * job keeps asking about it (its own partial index) until the provider pays it out or closes it.
 * Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refunds ADD COLUMN held_by_provider boolean NOT NULL DEFAULT false`.execute(db);
  await sql`CREATE INDEX refunds_held_query_due_idx ON refunds (next_query_at) WHERE held_by_provider`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS refunds_held_query_due_idx`.execute(db);
  await sql`ALTER TABLE refunds DROP COLUMN IF EXISTS held_by_provider`.execute(db);
}
