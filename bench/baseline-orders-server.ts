/**
 * The yardstick for `npm run bench -- orders`: the least a server can do for `POST /api/v1/orders`
 * on the same stack (Fastify 5, node-postgres, a pool of 20 like paycenter's default): parse the
 * JSON, insert the same columns into the same `orders` table, answer with the row. No auth, no
 * validation, no logging. Run by the benchmark as a child process, so its memory is measured alone,
 * as plain JavaScript (see support/typescript.ts); by hand, `node --import tsx` runs it too.
 *
 * Environment: DATABASE_URL (migrated by paycenter), BENCH_APP_ID (an existing app), HOST, PORT.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

interface CreateOrderBody {
  merchantOrderId: string;
  subject: string;
  amount: number;
}

const POOL_SIZE = 20;
const EXPIRE_IN_MS = 7_200_000;

// Named, so pg prepares it once per connection, as paycenter's database layer does for every
// statement with parameters: the baseline gets the same advantage, not a handicap.
const INSERT_ORDER = {
  name: 'baseline_insert_order',
  text: `INSERT INTO orders (app_id, merchant_order_id, subject, body, amount, currency, expire_at,
           notify_url, return_url, client_token, metadata, user_ip, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (app_id, merchant_order_id) DO NOTHING
         RETURNING *`,
};

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const appId = required('BENCH_APP_ID');
const pool = new pg.Pool({ connectionString: required('DATABASE_URL'), max: POOL_SIZE });
pool.on('error', () => {});
const app = Fastify({ logger: false });

app.get('/ready', async () => {
  await pool.query('SELECT 1');
  return { status: 'ready' };
});

app.post<{ Body: CreateOrderBody }>('/api/v1/orders', async (request, reply) => {
  const { merchantOrderId, subject, amount } = request.body;
  const now = new Date();
  const result = await pool.query({
    ...INSERT_ORDER,
    values: [
      appId,
      merchantOrderId,
      subject,
      null,
      amount,
      'CNY',
      new Date(now.getTime() + EXPIRE_IN_MS),
      null,
      null,
      randomBytes(24).toString('base64url'),
      '{}',
      null,
      now,
      now,
    ],
  });
  // The benchmark sends unique ids, so a conflict means the run is broken: answer so that it fails.
  if (result.rows.length === 0) return reply.status(409).send({ error: 'duplicate merchantOrderId' });
  return reply.status(201).send(result.rows[0]);
});

const stop = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

await app.listen({ host: required('HOST'), port: Number(required('PORT')) });
