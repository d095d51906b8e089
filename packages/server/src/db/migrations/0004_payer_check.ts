import { type Kysely, sql } from 'kysely';

/**
 * `orders.payer_checked_at`: when the paying browser last had paycenter ask the channels ("I have
 * paid"). The throttle on that button is a guarded update of this column, so it holds across every
 * instance sharing the database, not per process. Frozen: later changes are new migrations.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE orders ADD COLUMN payer_checked_at timestamptz`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE orders DROP COLUMN IF EXISTS payer_checked_at`.execute(db);
}
