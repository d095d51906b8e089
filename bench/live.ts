/**
 * `npm run bench -- live`: 1,000 browsers following distinct orders over Server-Sent Events on one
 * paycenter instance (`paycenter start`, its own process); then those orders are paid by another
 * instance (bench/live-payer.ts, a process of its own applying the payments through the same apply
 * function and the same coalesced LISTEN/NOTIFY feed a second server runs). Reports the latency from
 * each payment's commit to its event at the browser, where it goes (commit → NOTIFY heard by a third
 * listener, → event at the browser), whether the client or the payer was saturated (their event-loop
 * utilisation), and the server memory per open stream.
 *
 * The browsers run on BENCH_CLIENT_THREADS worker threads (default 2, bench/live-client.ts), so the
 * client's own event loop does not delay what it measures; the payer pays BENCH_PAY_CONCURRENCY
 * (default 20) at once, as fast as the database allows: a burst, the worst case for the feed (with
 * BENCH_PAY_RATE, paced at that many payments per second instead). It runs twice: with the browsers'
 * instance serving HTTP only, and as `paycenter start`, delivering the payments' webhooks too (the
 * paying instance here has no dispatcher of its own, so all of them land on the browsers' instance).
 * Memory per stream: the server's RSS from the first 10 % of the streams open to all of them.
 * Times are in ms of the system-wide monotonic clock (`process.hrtime`), comparable across the
 * processes and threads; a commit's time is taken after COMMIT returned on the paying side.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { Cleanup } from './support/cleanup.js';
import { createScratchDatabase, postgresVersion, withClient } from './support/database.js';
import { buildServer, createApp, REPO_ROOT, startPaycenter } from './support/paycenter.js';
import { freePort, readPeakRssBytes, startServer } from './support/processes.js';
import { percentile } from './support/report.js';
import { adminDatabaseUrl } from './support/settings.js';
import { nodeArgsToRun } from './support/typescript.js';

const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const PAY_CONCURRENCY = Number(process.env.BENCH_PAY_CONCURRENCY ?? 20);
const CLIENT_THREADS = Number(process.env.BENCH_CLIENT_THREADS ?? 2);
/** Payments per second, paced; 0 (the default): as fast as PAY_CONCURRENCY at once allows. */
const PAY_RATE = Number(process.env.BENCH_PAY_RATE ?? 0);
/** The feed's LISTEN/NOTIFY channel (realtime/order-feed.ts). */
const FEED_CHANNEL = 'paycenter_orders';

function progress(message: string): void {
  console.error(`live: ${message}`);
}

const monotonicMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function summary(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  return `p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, max ${ms(sorted.at(-1) ?? Number.NaN)}`;
}

interface ClientDone {
  arrivals: Array<[string, number]>;
  elu: number;
  delayP99Ms: number;
}

/** One thread of browsers (bench/live-client.ts, loaded as JavaScript from a data: URL). */
class ClientThread {
  readonly #worker: Worker;
  readonly warmed: Promise<void>;
  readonly opened: Promise<void>;
  readonly done: Promise<ClientDone>;

  constructor(code: string, base: string, orders: Array<{ id: string; token: string }>, warm: number) {
    this.#worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: { base, orders, warm },
    });
    let warmed: () => void = () => {};
    let opened: () => void = () => {};
    let done: (value: ClientDone) => void = () => {};
    const rejects: Array<(error: unknown) => void> = [];
    this.warmed = new Promise<void>((resolve, reject) => {
      warmed = resolve;
      rejects.push(reject);
    });
    this.opened = new Promise<void>((resolve, reject) => {
      opened = resolve;
      rejects.push(reject);
    });
    this.done = new Promise<ClientDone>((resolve, reject) => {
      done = resolve;
      rejects.push(reject);
    });
    const failed = (error: unknown) => {
      for (const reject of rejects) reject(error);
    };
    for (const promise of [this.warmed, this.opened, this.done]) promise.catch(() => {});
    this.#worker.on('message', (message: { type: string } & ClientDone) => {
      if (message.type === 'warm') warmed();
      if (message.type === 'open') opened();
      if (message.type === 'done') done(message);
    });
    this.#worker.on('error', (error) => failed(error));
    this.#worker.on('exit', (code) => failed(new Error(`a client thread exited (code ${code})`)));
  }

  continue(): void {
    this.#worker.postMessage({ type: 'continue' });
  }

  measure(): void {
    this.#worker.postMessage({ type: 'measure' });
  }

  stop(): Promise<number> {
    return this.#worker.terminate();
  }
}

/**
 * A third listener on the feed's channel: when each order id was first heard in a NOTIFY, to split
 * the latency into commit → NOTIFY delivered and NOTIFY delivered → browser.
 */
async function listenForNotifies(url: string, cleanup: Cleanup): Promise<Map<string, number>> {
  const heard = new Map<string, number>();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  cleanup.defer('close the NOTIFY probe', () => client.end());
  client.on('notification', (message) => {
    const at = monotonicMs();
    for (const match of (message.payload ?? '').matchAll(/\b([1-9]\d{0,18})\b/g)) {
      const id = match[1]!;
      if (!heard.has(id)) heard.set(id, at);
    }
  });
  await client.query(`LISTEN ${FEED_CHANNEL}`);
  return heard;
}

/**
 * The merchant's webhook endpoint, answering `200 SUCCESS` on a keep-alive connection: the instance
 * serving the browsers also delivers the payments' webhooks (`paycenter start` runs both), as it
 * would in production, so that work competes with the streams as it really does.
 */
async function startMerchant(cleanup: Cleanup): Promise<{ url: string; received: () => number }> {
  let received = 0;
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received++;
      response.writeHead(200, { 'content-type': 'text/plain' }).end('SUCCESS');
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanup.defer('stop the merchant endpoint', async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${port}`, received: () => received };
}

interface Scenario {
  label: string;
  /** `paycenter start` arguments for the instance serving the browsers. */
  role: 'api' | 'all';
}

const SCENARIOS: Scenario[] = [
  { label: 'streams only (the browsers’ instance runs --role api)', role: 'api' },
  {
    label:
      'streams and webhooks (the browsers’ instance runs paycenter start: it also delivers the 1,000 webhooks)',
    role: 'all',
  },
];

export async function run(cleanup: Cleanup): Promise<void> {
  if (!Number.isInteger(STREAMS) || STREAMS < 10)
    throw new Error('BENCH_STREAMS must be a whole number ≥ 10');
  if (!Number.isInteger(CLIENT_THREADS) || CLIENT_THREADS < 1)
    throw new Error('BENCH_CLIENT_THREADS must be a whole number ≥ 1');
  if (!Number.isInteger(PAY_CONCURRENCY) || PAY_CONCURRENCY < 1)
    throw new Error('BENCH_PAY_CONCURRENCY must be a whole number ≥ 1');
  if (!Number.isFinite(PAY_RATE) || PAY_RATE < 0) throw new Error('BENCH_PAY_RATE must be a number ≥ 0');
  progress('building packages/server');
  await buildServer();
  const version = await postgresVersion(adminDatabaseUrl());
  const reports: string[] = [];
  for (const scenario of SCENARIOS) {
    // Each scenario on a fresh database and fresh processes, stopped before the next starts.
    const own = new Cleanup();
    cleanup.defer(`end the scenario ${scenario.role}`, () => own.run());
    try {
      reports.push(await measure(own, scenario));
    } finally {
      await own.run();
    }
  }
  console.log(
    [
      `live: ${STREAMS} Server-Sent Event streams on one instance, orders paid by another instance, PostgreSQL ${version}`,
      ...reports,
    ].join('\n'),
  );
}

async function measure(cleanup: Cleanup, scenario: Scenario): Promise<string> {
  progress(`— ${scenario.label}`);
  const database = await createScratchDatabase(adminDatabaseUrl(), 'paycenter_bench');
  cleanup.defer(`drop database ${database.name}`, database.drop);
  const merchant = await startMerchant(cleanup);
  const paycenter = await startPaycenter(database.url, cleanup, {
    startArgs: ['--role', scenario.role],
    // The merchant's webhook endpoint is on this machine.
    env: { PAYCENTER_NOTIFY_ALLOW_PRIVATE: 'true' },
  });
  const app = await createApp(paycenter, 'bench', `${merchant.url}/hook`);
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

  progress('starting the paying instance');
  const payerPort = await freePort();
  const payer = await startServer(
    {
      label: 'paying instance',
      nodeArgs: nodeArgsToRun(path.join(REPO_ROOT, 'bench/live-payer.ts')),
      cwd: REPO_ROOT,
      env: {
        DATABASE_URL: database.url,
        BENCH_PAY_CONCURRENCY: String(PAY_CONCURRENCY),
        BENCH_PAY_RATE: String(PAY_RATE),
        PORT: String(payerPort),
      },
      port: payerPort,
      readyPath: '/ready',
    },
    cleanup,
  );
  const heard = await listenForNotifies(database.url, cleanup);

  const pid = paycenter.server.pid;
  progress(`opening ${STREAMS} event streams from ${CLIENT_THREADS} client threads`);
  const clientCode = nodeArgsToRun(path.join(REPO_ROOT, 'bench/live-client.ts')).at(-1)!;
  const warmPerThread = Math.floor(STREAMS / 10 / CLIENT_THREADS);
  const threads = Array.from({ length: CLIENT_THREADS }, (_, t) => {
    const share = orders.rows
      .filter((_, i) => i % CLIENT_THREADS === t)
      .map((o) => ({ id: o.id, token: o.client_token }));
    return new ClientThread(clientCode, paycenter.server.baseUrl, share, warmPerThread);
  });
  cleanup.defer('close the streams', async () => {
    await Promise.all(threads.map((thread) => thread.stop()));
  });
  // Memory per stream is measured from a warm server (code compiled, pool connected, buffers grown)
  // with the first 10 % of the streams open, to all of them: start-up costs are not per stream.
  await Promise.all(threads.map((thread) => thread.warmed));
  await new Promise((r) => setTimeout(r, 500));
  const rssBefore = rssBytes(pid);
  for (const thread of threads) thread.continue();
  await Promise.all(threads.map((thread) => thread.opened));
  await new Promise((r) => setTimeout(r, 500));
  const rssOpen = rssBytes(pid);
  const measuredStreams = STREAMS - warmPerThread * CLIENT_THREADS;

  progress(`paying the ${STREAMS} orders from another instance, ${PAY_CONCURRENCY} at once`);
  for (const thread of threads) thread.measure();
  const serverCpuBefore = paycenter.server.cpuSeconds();
  const response = await fetch(`${payer.baseUrl}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      channelId: orders.channelId,
      orders: orders.rows.map((o) => ({ id: o.id, no: o.no })),
    }),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the paying instance failed (${response.status}): ${text}`);
  const paid = JSON.parse(text) as {
    commits: Array<[string, number]>;
    seconds: number;
    notifies: number;
    elu: number;
    delayP99Ms: number;
  };
  const clients = await Promise.race([
    Promise.all(threads.map((thread) => thread.done)),
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`not every event arrived within 30 s of the last payment`)),
        30_000,
      ).unref(),
    ),
  ]);
  const serverCpu = paycenter.server.cpuSeconds() - serverCpuBefore;
  const webhooks = merchant.received();

  const arrivedAt = new Map(clients.flatMap((client) => client.arrivals));
  const committedAt = new Map(paid.commits);
  const latencies: number[] = [];
  const toNotify: number[] = [];
  const fromNotify: number[] = [];
  for (const order of orders.rows) {
    const commit = committedAt.get(order.id)!;
    const arrival = arrivedAt.get(order.id)!;
    latencies.push(arrival - commit);
    const notified = heard.get(order.id);
    if (notified !== undefined) {
      toNotify.push(notified - commit);
      fromNotify.push(arrival - notified);
    }
  }
  const perStream = (rssOpen - rssBefore) / measuredStreams;
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
  const percent = (value: number) => `${Math.round(value * 100)} %`;
  return [
    `${scenario.label}:`,
    `  paid ${STREAMS} in ${paid.seconds.toFixed(2)} s (${Math.round(STREAMS / paid.seconds)}/s, ${PAY_CONCURRENCY} at once${PAY_RATE > 0 ? `, paced at ${PAY_RATE}/s` : ''}), ${paid.notifies} NOTIFYs`,
    `  commit → event at the browser: ${summary(latencies)} (aim p99 < 100 ms)`,
    `    commit → NOTIFY heard:       ${summary(toNotify)} (${toNotify.length} ids heard by a third listener)`,
    `    NOTIFY heard → browser:      ${summary(fromNotify)}`,
    `  server CPU while paying: ${(serverCpu * 1000).toFixed(0)} ms, ${webhooks} webhooks delivered meanwhile; event loop busy: payer ${percent(paid.elu)} (delay p99 ${paid.delayP99Ms.toFixed(1)} ms), ` +
      `client threads ${clients.map((c) => `${percent(c.elu)} (delay p99 ${c.delayP99Ms.toFixed(1)} ms)`).join(', ')}`,
    `  server memory per open stream: ${(perStream / 1024).toFixed(1)} KB (RSS ${mb(rssBefore)} with ${STREAMS - measuredStreams} streams → ${mb(rssOpen)} with ${STREAMS}; peak ${mb(readPeakRssBytes(pid))})`,
  ].join('\n');
}
