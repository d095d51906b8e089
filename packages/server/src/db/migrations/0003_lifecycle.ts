import { type Kysely, sql } from 'kysely';

/**
 * The order lifecycle's bookkeeping: refunds, active queries, expiry.
 *
 * - `attempts.next_query_at` / `query_count`: when the sync job next asks the channel about a waiting
 *   attempt, and how often it has; claiming a due attempt moves `next_query_at` on (the claim is the
 *   lease), so two workers never ask about the same attempt at once and a crashed worker's attempt
 *   comes due again.
 * - `orders.expiry_lease_until`: the same for the expiry job, which closes an expired order's attempts
 *   at their channels before closing the order.
 * - `refunds.kind`: a merchant's refund, or one paycenter made of a duplicate payment (no merchant
 *   refund id, one per duplicate attempt, not counted in the order's refunded amount).
 *   `submitted_at`: when the channel accepted the request (null: send it, again if need be, which the
 *   providers treat idempotently by out_refund_no). `next_query_at` / `query_count` as for attempts.
 * - `apps.auto_refund_duplicates`: whether a duplicate payment is refunded without asking.
 * Frozen: later changes are new migrations.
 */
const statements = [
  'ALTER TABLE apps ADD COLUMN auto_refund_duplicates boolean NOT NULL DEFAULT true',
  'ALTER TABLE attempts ADD COLUMN next_query_at timestamptz',
  'ALTER TABLE attempts ADD COLUMN query_count integer NOT NULL DEFAULT 0',
  `UPDATE attempts SET next_query_at = created_at + interval '60 seconds' WHERE status = 'waiting'`,
  `CREATE INDEX attempts_query_due_idx ON attempts (next_query_at) WHERE status = 'waiting'`,
  'ALTER TABLE orders ADD COLUMN expiry_lease_until timestamptz',
  `CREATE INDEX orders_expiry_due_idx ON orders (expire_at) WHERE status = 'waiting'`,
  `ALTER TABLE refunds ADD COLUMN kind text NOT NULL DEFAULT 'merchant'
     CHECK (kind IN ('merchant', 'duplicate_payment'))`,
  'ALTER TABLE refunds ALTER COLUMN merchant_refund_id DROP NOT NULL',
  `ALTER TABLE refunds ADD CONSTRAINT refunds_merchant_refund_id_by_kind
     CHECK ((kind = 'merchant') = (merchant_refund_id IS NOT NULL))`,
  `CREATE UNIQUE INDEX refunds_duplicate_attempt_key ON refunds (attempt_id) WHERE kind = 'duplicate_payment'`,
  'ALTER TABLE refunds ADD COLUMN submitted_at timestamptz',
  'ALTER TABLE refunds ADD COLUMN failed_at timestamptz',
  'ALTER TABLE refunds ADD COLUMN next_query_at timestamptz',
  'ALTER TABLE refunds ADD COLUMN query_count integer NOT NULL DEFAULT 0',
  `CREATE INDEX refunds_query_due_idx ON refunds (next_query_at) WHERE status = 'waiting'`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const statement of [
    'DROP INDEX IF EXISTS refunds_query_due_idx',
    'ALTER TABLE refunds DROP COLUMN IF EXISTS query_count',
    'ALTER TABLE refunds DROP COLUMN IF EXISTS next_query_at',
    'ALTER TABLE refunds DROP COLUMN IF EXISTS failed_at',
    'ALTER TABLE refunds DROP COLUMN IF EXISTS submitted_at',
    'DROP INDEX IF EXISTS refunds_duplicate_attempt_key',
    'ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_merchant_refund_id_by_kind',
    `DELETE FROM refunds WHERE kind = 'duplicate_payment'`,
    'ALTER TABLE refunds ALTER COLUMN merchant_refund_id SET NOT NULL',
    'ALTER TABLE refunds DROP COLUMN IF EXISTS kind',
    'DROP INDEX IF EXISTS orders_expiry_due_idx',
    'ALTER TABLE orders DROP COLUMN IF EXISTS expiry_lease_until',
    'DROP INDEX IF EXISTS attempts_query_due_idx',
    'ALTER TABLE attempts DROP COLUMN IF EXISTS query_count',
    'ALTER TABLE attempts DROP COLUMN IF EXISTS next_query_at',
    'ALTER TABLE apps DROP COLUMN IF EXISTS auto_refund_duplicates',
  ]) {
    await sql.raw(statement).execute(db);
  }
}
