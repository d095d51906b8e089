import { type Kysely, sql } from 'kysely';

/**
 * The data model of DESIGN §4. Constraints carry the rules the code relies on (one order per merchant
 * order id, amounts > 0, known statuses), so a bug elsewhere cannot write a row that breaks them.
 * Frozen: later changes are new migrations.
 */
const statements = [
  `CREATE TABLE apps (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
     status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
     notify_url text NOT NULL,
     return_url text,
     notify_schedule integer[] CHECK (notify_schedule IS NULL OR cardinality(notify_schedule) BETWEEN 1 AND 30),
     webhook_secret text NOT NULL,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL
   )`,
  `CREATE TABLE api_keys (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     app_id bigint NOT NULL REFERENCES apps (id),
     prefix text NOT NULL,
     hash text NOT NULL UNIQUE,
     created_at timestamptz NOT NULL,
     revoked_at timestamptz
   )`,
  'CREATE INDEX api_keys_app_id_idx ON api_keys (app_id)',
  `CREATE TABLE channels (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     app_id bigint NOT NULL REFERENCES apps (id),
     code text NOT NULL CHECK (code IN ('wx_native', 'wx_jsapi', 'wx_lite', 'wx_h5', 'wx_app',
                                        'alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app', 'alipay_bar')),
     status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
     fee_rate integer NOT NULL DEFAULT 0 CHECK (fee_rate BETWEEN 0 AND 10000),
     config text NOT NULL,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL,
     CONSTRAINT channels_app_code_key UNIQUE (app_id, code)
   )`,
  `CREATE TABLE orders (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     app_id bigint NOT NULL REFERENCES apps (id),
     merchant_order_id text NOT NULL CHECK (merchant_order_id ~ '^[A-Za-z0-9_-]{1,64}$'),
     subject text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 128),
     body text,
     amount bigint NOT NULL CHECK (amount > 0),
     currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
     status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'paid', 'closed', 'refunded')),
     paid_attempt_id bigint,
     channel_code text,
     paid_at timestamptz,
     closed_at timestamptz,
     expire_at timestamptz NOT NULL,
     refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
     notify_url text,
     return_url text,
     client_token text NOT NULL,
     metadata jsonb NOT NULL DEFAULT '{}',
     user_ip text,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL,
     CONSTRAINT orders_app_merchant_order_id_key UNIQUE (app_id, merchant_order_id),
     CHECK ((status IN ('paid', 'refunded')) = (paid_at IS NOT NULL))
   )`,
  'CREATE INDEX orders_status_expire_at_idx ON orders (status, expire_at)',
  `CREATE TABLE attempts (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     order_id bigint NOT NULL REFERENCES orders (id),
     channel_id bigint NOT NULL REFERENCES channels (id),
     channel_code text NOT NULL,
     no text NOT NULL UNIQUE CHECK (no ~ '^[0-9A-Za-z_-]{1,32}$'),
     amount bigint NOT NULL CHECK (amount > 0),
     status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'paid', 'closed', 'failed')),
     display_mode text CHECK (display_mode IN ('qr_code', 'url', 'form', 'app', 'jsapi', 'none')),
     display_content text,
     channel_trade_no text,
     payer_id text,
     raw_callback jsonb,
     failure_code text,
     failure_message text,
     paid_at timestamptz,
     closed_at timestamptz,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL
   )`,
  'CREATE INDEX attempts_status_created_at_idx ON attempts (status, created_at)',
  'CREATE INDEX attempts_order_id_idx ON attempts (order_id)',
  `ALTER TABLE orders ADD CONSTRAINT orders_paid_attempt_id_fkey
     FOREIGN KEY (paid_attempt_id) REFERENCES attempts (id)`,
  `CREATE TABLE refunds (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     app_id bigint NOT NULL REFERENCES apps (id),
     order_id bigint NOT NULL REFERENCES orders (id),
     attempt_id bigint NOT NULL REFERENCES attempts (id),
     merchant_refund_id text NOT NULL CHECK (merchant_refund_id ~ '^[A-Za-z0-9_-]{1,64}$'),
     no text NOT NULL UNIQUE CHECK (no ~ '^[0-9A-Za-z_-]{1,32}$'),
     amount bigint NOT NULL CHECK (amount > 0),
     reason text,
     status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'succeeded', 'failed')),
     channel_refund_no text,
     failure_reason text,
     succeeded_at timestamptz,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL,
     CONSTRAINT refunds_app_merchant_refund_id_key UNIQUE (app_id, merchant_refund_id)
   )`,
  'CREATE INDEX refunds_order_id_idx ON refunds (order_id)',
  'CREATE INDEX refunds_status_created_at_idx ON refunds (status, created_at)',
  `CREATE TABLE events (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     app_id bigint NOT NULL REFERENCES apps (id),
     type text NOT NULL CHECK (type IN ('order.paid', 'order.closed', 'order.duplicate_paid',
                                        'refund.succeeded', 'refund.failed')),
     order_id bigint REFERENCES orders (id),
     refund_id bigint REFERENCES refunds (id),
     payload jsonb NOT NULL,
     created_at timestamptz NOT NULL
   )`,
  'CREATE INDEX events_order_id_idx ON events (order_id)',
  'CREATE INDEX events_app_id_created_at_idx ON events (app_id, created_at)',
  `CREATE TABLE notify_tasks (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     event_id bigint NOT NULL REFERENCES events (id),
     app_id bigint NOT NULL REFERENCES apps (id),
     url text NOT NULL,
     status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
     attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
     max_attempts integer NOT NULL CHECK (max_attempts >= 1),
     next_attempt_at timestamptz NOT NULL,
     locked_until timestamptz,
     last_error text,
     delivered_at timestamptz,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL
   )`,
  'CREATE INDEX notify_tasks_status_next_attempt_at_idx ON notify_tasks (status, next_attempt_at)',
  'CREATE INDEX notify_tasks_event_id_idx ON notify_tasks (event_id)',
  `CREATE TABLE notify_logs (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     task_id bigint NOT NULL REFERENCES notify_tasks (id),
     attempt_no integer NOT NULL CHECK (attempt_no >= 1),
     http_status integer,
     response_excerpt text,
     error text,
     duration_ms integer NOT NULL CHECK (duration_ms >= 0),
     created_at timestamptz NOT NULL
   )`,
  'CREATE INDEX notify_logs_task_id_idx ON notify_logs (task_id)',
  `CREATE TABLE outbox (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     event_id bigint NOT NULL REFERENCES events (id),
     published_at timestamptz,
     created_at timestamptz NOT NULL
   )`,
  'CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL',
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'outbox',
    'notify_logs',
    'notify_tasks',
    'events',
    'refunds',
    'orders CASCADE',
    'attempts',
    'channels',
    'api_keys',
    'apps',
  ]) {
    await sql.raw(`DROP TABLE IF EXISTS ${table}`).execute(db);
  }
}
