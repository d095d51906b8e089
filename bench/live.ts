/**
 * `npm run bench -- live`: 1,000 browsers following distinct orders over Server-Sent Events on one
 * paycenter instance; then those orders are paid by another instance (this process, applying the
 * payments through the same apply function and the same coalesced LISTEN/NOTIFY feed a second server
 * would use). Reports the latency from each payment's commit to its event at the browser, and the
 * server memory per open stream.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { applyTrade } from '../packages/server/src/attempts/apply-trade.js';
import type { TradeSnapshot } from '../packages/server/src/channels/channel-client.js';
import { systemClock } from '../packages/server/src/clock.js';
import { openDatabase } from '../packages/server/src/db/database.js';
import { OrderFeed } from '../packages/server/src/realtime/order-feed.js';
import type { Cleanup } from './support/cleanup.js';
import { createScratchDatabase, postgresVersion, withClient } from './support/database.js';
import { buildServer, createApp, startPaycenter } from './support/paycenter.js';
import { readPeakRssBytes } from './support/processes.js';
import { adminDatabaseUrl } from './support/settings.js';

const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const PAY_CONCURRENCY = 20;

function progress(message: string): void {
  console.error(`live: ${message}`);
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** One browser: an EventSource-like reader that records when the order was reported paid. */
function follow(
  agent: http.Agent,
  base: string,
  orderId: string,
  token: string,
  onPaid: () => void,
): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${base}/api/v1/public/orders/${orderId}/events?token=${token}`,
      { agent, headers: { accept: 'text/event-stream' } },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`the stream for order ${orderId} answered ${response.statusCode}`));
          return;
        }
        let buffered = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          buffered += chunk;
          if (buffered.includes('"status":"paid"')) {
            onPaid();
            buffered = '';
          } else if (buffered.length > 4096) {
            buffered = buffered.slice(-512);
          }
        });
        resolve(request);
      },
    );
    request.on('error', reject);
  });
}

export async function run(cleanup: Cleanup): Promise<void> {
  if (!Number.isInteger(STREAMS) || STREAMS < 10)
    throw new Error('BENCH_STREAMS must be a whole number ≥ 10');
  progress('building packages/server');
  await buildServer();
  const database = await createScratchDatabase(adminDatabaseUrl(), 'paycenter_bench');
  cleanup.defer(`drop database ${database.name}`, database.drop);
  const paycenter = await startPaycenter(database.url, cleanup);
  const app = await createApp(paycenter, 'bench');

  progress(`seeding ${STREAMS} waiting orders with one attempt each`);
  const orders = await withClient(database.url, async (client) => {
    // The apply path needs a channel row; its credentials are never used here.
    const channel = await client.query<{ id: string }>(
      `INSERT INTO channels (app_id, code, config, created_at, updated_at)
       VALUES ($1, 'wx_native', 'unused', now(), now()) RETURNING id`,
      [app.id],
    );
    const channelId = channel.rows[0]!.id;
    await client.query(
      `INSERT INTO orders (app_id, merchant_order_id, subject, amount, currency, expire_at, client_token, created_at, updated_at)
       SELECT $1, 'live-' || g, 'Benchmark order', 100, 'CNY', now() + interval '2 hours', md5(g::text), now(), now()
         FROM generate_series(1, $2::int) AS g`,
      [app.id, STREAMS],
    );
    await client.query(
      `INSERT INTO attempts (order_id, channel_id, channel_code, no, amount, created_at, updated_at)
       SELECT id, $1, 'wx_native', 'L' || lpad(id::text, 12, '0'), amount, now(), now() FROM orders`,
      [channelId],
    );
    const { rows } = await client.query<{ id: string; client_token: string; no: string }>(
      'SELECT o.id, o.client_token, a.no FROM orders o JOIN attempts a ON a.order_id = o.id ORDER BY o.id',
    );
    return { channelId, rows };
  });

  const pid = paycenter.server.pid;
  const rssBefore = rssBytes(pid);
  progress(`opening ${STREAMS} event streams`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  cleanup.defer('close the streams', async () => agent.destroy());
  const arrivedAt = new Map<string, number>();
  let markAllPaid: () => void = () => {};
  const allPaid = new Promise<void>((resolve) => {
    markAllPaid = resolve;
  });
  // Opened in groups so the server is not asked for a thousand connections in the same instant.
  for (let i = 0; i < orders.rows.length; i += 100) {
    await Promise.all(
      orders.rows.slice(i, i + 100).map((o) =>
        follow(agent, paycenter.server.baseUrl, o.id, o.client_token, () => {
          if (!arrivedAt.has(o.id)) arrivedAt.set(o.id, performance.now());
          if (arrivedAt.size === orders.rows.length) markAllPaid();
        }),
      ),
    );
  }
  await new Promise((r) => setTimeout(r, 500));
  const rssOpen = rssBytes(pid);

  progress(`paying the ${STREAMS} orders from another instance, ${PAY_CONCURRENCY} at once`);
  const other = await openDatabase({ kind: 'postgres', url: database.url, poolSize: PAY_CONCURRENCY });
  cleanup.defer('close the second instance', () => other.close());
  const feed = new OrderFeed(other.db, { connectionString: database.url });
  await feed.start();
  cleanup.defer('stop the second instance feed', () => feed.stop());
  const committedAt = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: PAY_CONCURRENCY }, async () => {
      while (next < orders.rows.length) {
        const order = orders.rows[next++]!;
        const trade: TradeSnapshot = {
          outTradeNo: order.no,
          state: 'paid',
          amount: 100,
          channelTradeNo: `T${order.no}`,
          payerId: 'bench',
          paidAt: new Date(),
          providerState: 'SUCCESS',
          raw: {},
        };
        const result = await applyTrade(other.db, systemClock, {
          channelId: orders.channelId,
          trade,
          source: 'query',
        });
        committedAt.set(order.id, performance.now());
        if (result.result !== 'applied') throw new Error(`apply answered ${JSON.stringify(result)}`);
      }
    }),
  );
  await Promise.race([
    allPaid,
    new Promise((_, reject) =>
      setTimeout(
        () => reject(new Error(`only ${arrivedAt.size} of ${STREAMS} events arrived within 30 s`)),
        30_000,
      ).unref(),
    ),
  ]);

  const latencies = orders.rows
    .map((o) => Math.max(0, arrivedAt.get(o.id)! - committedAt.get(o.id)!))
    .sort((a, b) => a - b);
  const version = await postgresVersion(database.url);
  const perStream = (rssOpen - rssBefore) / STREAMS;
  console.log(
    [
      `live: ${STREAMS} Server-Sent Event streams on one instance, orders paid by another instance, PostgreSQL ${version}`,
      `commit → event at the browser: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms (aim p99 < 100 ms)`,
      `server memory per open stream: ${(perStream / 1024).toFixed(1)} KB (RSS ${(rssBefore / 2 ** 20).toFixed(0)} MB → ${(rssOpen / 2 ** 20).toFixed(0)} MB with ${STREAMS} streams; peak ${(readPeakRssBytes(pid) / 2 ** 20).toFixed(0)} MB)`,
    ].join('\n'),
  );
}
