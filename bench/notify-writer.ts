/**
 * The trickle writer of `npm run bench -- notify`: behaves like a paycenter API instance that commits
 * payments. Each task is written in a transaction of its own by paycenter's own `recordEvent` on its
 * own database layer, both from the build (read the app, insert the event, insert its notify task,
 * due now; statements prepared), and after the commit it wakes the dispatchers the way paycenter
 * does: `WakeupBus.wake()`, one coalesced NOTIFY per 20 ms on the bus's own connection, never inside
 * the transaction. The dispatcher is in another process (`paycenter start --role worker`), so this is
 * the cross-instance path.
 *
 *   GET  /ready  200 once connected and listening
 *   POST /run    writes BENCH_RATE tasks per second for BENCH_TRICKLE_SECONDS, on a fixed schedule
 *                (each at its own time, not after the previous one), and answers
 *                `{ commits: [[eventId, committedAt], …], notifies }` once all are committed
 *
 * committedAt is taken when COMMIT returns, in wall-clock ms with a fraction
 * (`performance.timeOrigin + performance.now()`), comparable with the receiver's arrival times.
 * Environment: DATABASE_URL, BENCH_APP_ID, BENCH_EVENT_DATA (the order, JSON; `id` and
 * `merchantOrderId` are set per task), BENCH_RATE, BENCH_TRICKLE_SECONDS, PORT. Run as plain
 * JavaScript by the benchmark (see support/typescript.ts), from the repository root.
 */
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

type WakeupModule = typeof import('../packages/server/src/notify/wakeup.js');
type DatabaseModule = typeof import('../packages/server/src/db/database.js');
type EventModule = typeof import('../packages/server/src/events/event.repository.js');

const databaseUrl = process.env.DATABASE_URL ?? '';
const appId = process.env.BENCH_APP_ID ?? '';
const rate = Number(process.env.BENCH_RATE ?? 50);
const seconds = Number(process.env.BENCH_TRICKLE_SECONDS ?? 10);
const port = Number(process.env.PORT);
const eventData = JSON.parse(process.env.BENCH_EVENT_DATA ?? '{}') as Record<string, unknown>;

const built = (file: string) => pathToFileURL(path.join(process.cwd(), 'packages/server/dist', file)).href;
const { WakeupBus } = (await import(built('notify/wakeup.js'))) as WakeupModule;
const { openDatabase } = (await import(built('db/database.js'))) as DatabaseModule;
const { recordEvent } = (await import(built('events/event.repository.js'))) as EventModule;

const now = () => performance.timeOrigin + performance.now();

const database = await openDatabase({ kind: 'postgres', url: databaseUrl, poolSize: 8 });
const wakeup = new WakeupBus({ connectionString: databaseUrl });
await wakeup.start();

/** One payment's worth of `recordEvent`, committed, then the wake-up; returns [eventId, committedAt]. */
async function writeOne(n: number): Promise<[string, number]> {
  const at = new Date();
  const { eventId } = await database.db.transaction().execute((trx) =>
    recordEvent(trx, {
      appId,
      type: 'order.paid',
      orderId: null,
      data: { ...eventData, id: String(n), merchantOrderId: `trickle-${n}` },
      notifyUrl: null,
      channel: { channelId: null, channelCode: 'wx_native' },
      now: at,
    }),
  );
  const committedAt = now();
  wakeup.wake();
  return [eventId, committedAt];
}

async function trickle(): Promise<{ commits: Array<[string, number]>; notifies: number }> {
  const count = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const sentBefore = wakeup.stats.sent;
  const start = performance.now();
  const writes: Promise<[string, number]>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = start + i * intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    writes.push(writeOne(i + 1));
  }
  const commits = await Promise.all(writes);
  return { commits, notifies: wakeup.stats.sent - sentBefore };
}

const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/ready') {
    response.writeHead(wakeup.crossInstance ? 200 : 503).end();
    return;
  }
  if (request.method === 'POST' && request.url === '/run') {
    trickle().then(
      (result) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
      (error: unknown) =>
        response.writeHead(500).end(error instanceof Error ? (error.stack ?? error.message) : String(error)),
    );
    return;
  }
  response.writeHead(404).end();
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  void Promise.all([wakeup.stop(), database.close()]).finally(() => process.exit(0));
});
