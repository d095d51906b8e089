/**
 * The paying instance of `npm run bench -- live`: a process of its own that behaves like a second
 * paycenter instance on the same PostgreSQL. It applies payments through paycenter's own
 * `applyTrade` (from the build) and runs the same `OrderFeed` a server runs, so each commit is
 * announced in-process and reaches the other instance through the coalesced NOTIFY, after the commit;
 * like runtime.ts, every announced change also wakes the webhook dispatchers (`WakeupBus`), so the
 * other instance's dispatcher, if it runs one, starts on the payments' webhooks at once. It has no
 * dispatcher of its own: every webhook is left to the other instance.
 *
 *   GET  /ready  200 once connected and listening
 *   POST /run    `{ channelId, orders: [{ id, no }] }`: pays them all, BENCH_PAY_CONCURRENCY at once
 *                (and, with BENCH_PAY_RATE, starting at most that many per second),
 *                and answers `{ commits: [[orderId, committedAt], …], seconds, notifies, elu, delayP99Ms }`
 *
 * committedAt is taken when `applyTrade` returns, i.e. after COMMIT has returned, in ms of the
 * system-wide monotonic clock (`process.hrtime`), comparable with the browsers' arrival times in the
 * benchmark's threads. `elu` is this process's event-loop utilisation while paying and `delayP99Ms`
 * its p99 event-loop delay: a commit's time is late by at most about that much. Environment: DATABASE_URL, BENCH_PAY_CONCURRENCY, BENCH_PAY_RATE, PORT. Run as
 * plain JavaScript by the benchmark (see support/typescript.ts), from the repository root.
 */
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

type ApplyModule = typeof import('../packages/server/src/attempts/apply-trade.js');
type ClockModule = typeof import('../packages/server/src/clock.js');
type DatabaseModule = typeof import('../packages/server/src/db/database.js');
type FeedModule = typeof import('../packages/server/src/realtime/order-feed.js');
type ChangesModule = typeof import('../packages/server/src/realtime/order-changes.js');
type WakeupModule = typeof import('../packages/server/src/notify/wakeup.js');

const databaseUrl = process.env.DATABASE_URL ?? '';
const concurrency = Number(process.env.BENCH_PAY_CONCURRENCY ?? 20);
/** Payments started per second; 0: each worker starts the next as soon as its last committed. */
const rate = Number(process.env.BENCH_PAY_RATE ?? 0);
const port = Number(process.env.PORT);

const built = (file: string) => pathToFileURL(path.join(process.cwd(), 'packages/server/dist', file)).href;
const { applyTrade } = (await import(built('attempts/apply-trade.js'))) as ApplyModule;
const { systemClock } = (await import(built('clock.js'))) as ClockModule;
const { openDatabase } = (await import(built('db/database.js'))) as DatabaseModule;
const { OrderFeed } = (await import(built('realtime/order-feed.js'))) as FeedModule;
const { onOrderChange } = (await import(built('realtime/order-changes.js'))) as ChangesModule;
const { WakeupBus } = (await import(built('notify/wakeup.js'))) as WakeupModule;

const monotonicMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;

const database = await openDatabase({ kind: 'postgres', url: databaseUrl, poolSize: concurrency });
const feed = new OrderFeed(database.db, { connectionString: databaseUrl });
await feed.start();
const wakeup = new WakeupBus({ connectionString: databaseUrl });
await wakeup.start();
onOrderChange(database.db, () => wakeup.wake());

interface RunRequest {
  channelId: string;
  orders: Array<{ id: string; no: string }>;
}

async function pay(request: RunRequest) {
  const commits: Array<[string, number]> = [];
  const sentBefore = feed.stats.sent;
  const eluBefore = performance.eventLoopUtilization();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < request.orders.length) {
        const n = next++;
        const order = request.orders[n]!;
        // Paced: payment n starts at its own time (or at once, if the others are late).
        const wait = rate > 0 ? started + (n * 1000) / rate - performance.now() : 0;
        if (wait > 0) await sleep(wait);
        const result = await applyTrade(database.db, systemClock, {
          channelId: request.channelId,
          trade: {
            outTradeNo: order.no,
            state: 'paid',
            amount: 100,
            channelTradeNo: `T${order.no}`,
            payerId: 'bench',
            paidAt: new Date(),
            providerState: 'SUCCESS',
            raw: {},
          },
        });
        commits.push([order.id, monotonicMs()]);
        if (result.result !== 'applied') throw new Error(`apply answered ${JSON.stringify(result)}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const elu = performance.eventLoopUtilization(eluBefore).utilization;
  delay.disable();
  const delayP99Ms = delay.percentile(99) / 1e6;
  return { commits, seconds, notifies: feed.stats.sent - sentBefore, elu, delayP99Ms };
}

const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/ready') {
    response.writeHead(feed.crossInstance && wakeup.crossInstance ? 200 : 503).end();
    return;
  }
  if (request.method === 'POST' && request.url === '/run') {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      pay(JSON.parse(body) as RunRequest).then(
        (result) =>
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
        (error: unknown) =>
          response
            .writeHead(500)
            .end(error instanceof Error ? (error.stack ?? error.message) : String(error)),
      );
    });
    return;
  }
  response.writeHead(404).end();
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void Promise.all([feed.stop(), wakeup.stop(), database.close()]).finally(() => process.exit(0));
});
