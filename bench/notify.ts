/**
 * `npm run bench -- notify`: webhook delivery on PostgreSQL. 20,000 webhooks (BENCH_NOTIFY_TASKS) go
 * to a local keep-alive receiver answering `200 SUCCESS` (bench/notify-receiver.ts, a process of its
 * own) through three consumers, one after the other, on one scratch database:
 *
 * 1. paycenter's dispatcher, as an operator runs it: `paycenter start --role worker` from the build,
 *    with PAYCENTER_NOTIFY_ALLOW_PRIVATE=true for the loopback receiver. The tasks are events plus
 *    notify_tasks rows inserted in one statement, then one wake-up NOTIFY, as an API instance sends.
 * 2. pg-boss and 3. graphile-worker (bench/notify-peer.ts), in their own schemas, configured for
 *    throughput as their documentation says, the jobs enqueued with their own bulk calls.
 *
 * Every consumer sends with paycenter's WebhookSender (same pool size, signing, body) and has the same
 * number of webhooks in flight: paycenter's per-host limit, since all go to one host. The clock runs
 * from the commit of the enqueued work to the receiver's arrival of the last distinct webhook. First,
 * the yardstick: the same webhooks through the same sender from memory, no queue and no database.
 *
 * Then the latency from commit to first try through paycenter at a trickle of 50 tasks/s for
 * BENCH_SECONDS (default 10): bench/notify-writer.ts writes each task in a transaction of its own,
 * as `recordEvent` does, and wakes the worker process through the coalesced NOTIFY of WakeupBus.
 *
 * BENCH_NOTIFY_CONSUMERS (e.g. `paycenter,graphile-worker`) runs only some; BENCH_PGBOSS_CONFIG and
 * BENCH_GRAPHILE_CONFIG (JSON) replace a peer's configuration; BENCH_NOTIFY_CPU_PROF=<dir> writes a
 * V8 CPU profile of every consumer process there (open it in Chrome DevTools).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { GraphilePeerConfig, NoQueueConfig, PgBossPeerConfig, WebhookJob } from './notify-peer.js';
import type { ReceiverStats } from './notify-receiver.js';
import type { Cleanup } from './support/cleanup.js';
import { createScratchDatabase, postgresVersion, withClient } from './support/database.js';
import { buildServer, PAYCENTER_CLI, REPO_ROOT, runPaycenterCommand } from './support/paycenter.js';
import {
  type ChildProcessHandle,
  freePort,
  readCpuSeconds,
  type ServerProcess,
  startServer,
  startWorker,
} from './support/processes.js';
import { percentile } from './support/report.js';
import { adminDatabaseUrl, measuredSeconds } from './support/settings.js';
import { nodeArgsToRun } from './support/typescript.js';

type WakeupModule = typeof import('../packages/server/src/notify/wakeup.js');

/**
 * Webhooks in flight per consumer. paycenter's worker runs with its defaults (concurrency 64,
 * perHostConcurrency 16, prefetch 100: up to 100 more claimed ahead in the host's local queue); every
 * webhook here goes to one host, so 16 are in flight, and the peers get the same 16.
 */
const IN_FLIGHT = 16;
const QUEUE = 'notify';
const RATIO_AIM = 1.5;
const P99_AIM_MS = 50;
const TRICKLE_RATE = 50;
/** A consumer that delivers nothing new for this long has stalled: the run stops instead of hanging. */
const STALL_MS = 30_000;
const PHASE_LIMIT_MS = 300_000;
const SETTLE_LIMIT_MS = 20_000;

const PAYCENTER_LABEL = 'paycenter dispatcher';
const NO_QUEUE_LABEL = 'sender alone, no queue';
const PEER_VERSIONS = {
  'pg-boss': packageVersion('pg-boss'),
  'graphile-worker': packageVersion('graphile-worker'),
};

/**
 * pg-boss, tuned as its documentation says (the option docs in pg-boss's types.d.ts, pgboss.io/api):
 * `useListenNotify` plus a queue with `notify: true` wake workers when jobs are inserted instead of
 * at their next poll; `localConcurrency` workers each fetch `batchSize` jobs per round trip and
 * complete them in one statement; `burstWhenBatchFull` fetches again at once while batches come back
 * full. Each worker sends its batch one webhook after another, so IN_FLIGHT webhooks are in flight.
 * The pool has room for every worker's fetch or completion plus the listener and maintenance.
 * batchSize 25 was the best of a sweep here (20,000 webhooks, 16 workers): 10 → 1,360–1,610/s,
 * 25 → 3,780–4,200/s, 50 → 3,660/s, 100 → 2,810/s; batchSize 1 stalls (a worker waits out the 30 s
 * notify poll after each fetch, since burstWhenBatchFull needs batchSize > 1); sending each batch in
 * parallel instead, 1 worker × 16 jobs reached 1,390/s and 4 × 4 reached 1,750/s.
 */
const PG_BOSS: PgBossPeerConfig = {
  constructor: { schema: 'pgboss', useListenNotify: true, max: IN_FLIGHT + 4 },
  queue: { notify: true },
  work: { localConcurrency: IN_FLIGHT, batchSize: 25, burstWhenBatchFull: true },
  batchHandling: 'sequential',
};

/**
 * graphile-worker, tuned as its performance page says (worker.graphile.org/docs/performance,
 * "Batching"): a local queue fetches and locks jobs in batches of `localQueue.size` (500 in the
 * page's configuration) for the `concurrentJobs` workers; `completeJobBatchDelay: 0` and
 * `failJobBatchDelay: 0` batch the completions; prepared statements (the default) on; the pool at
 * `concurrentJobs + 2` as the option's documentation recommends. New jobs wake it through its own
 * LISTEN/NOTIFY. A sweep of localQueue.size here: 17 (concurrentJobs + 1) → 1,960/s, 100 → 2,180/s,
 * 500 → 2,750/s, 2,000 → 2,820/s.
 */
const GRAPHILE_WORKER: GraphilePeerConfig = {
  worker: {
    concurrentJobs: IN_FLIGHT,
    maxPoolSize: IN_FLIGHT + 2,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
    preparedStatements: true,
  },
};

interface Row {
  label: string;
  seconds: number;
  perSecond: number;
  cpuMicrosPerWebhook: number;
  /** CPU of the PostgreSQL backends serving the scratch database, per webhook. */
  databaseMicrosPerWebhook: number;
  peakRssBytes: number;
  duplicates: number;
  bodyBytes: number;
}

interface Setup {
  databaseUrl: string;
  receiver: ServerProcess;
  hookUrl: string;
  appId: string;
  webhookSecret: string;
  masterKey: string;
  count: number;
  cleanup: Cleanup;
}

function progress(message: string): void {
  console.error(`notify: ${message}`);
}

/** Wall-clock ms with a fraction, as the receiver and the writer record them. */
const now = () => performance.timeOrigin + performance.now();

function packageVersion(name: string): string {
  const manifest = JSON.parse(
    readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8'),
  );
  return String((manifest as { version?: unknown }).version);
}

/** The order as the merchant API shows it (DESIGN §7), the `data` of every webhook: ~600 bytes. */
function orderData(n: number, at: Date): Record<string, unknown> {
  return {
    id: String(n),
    appId: '1',
    merchantOrderId: `bench-${n}`,
    subject: 'Longjing tea, 250 g, first flush',
    body: 'West Lake Longjing, spring harvest; gift box with two tins',
    amount: 12800,
    currency: 'CNY',
    status: 'paid',
    refundedAmount: 0,
    expireAt: new Date(at.getTime() + 7_200_000).toISOString(),
    notifyUrl: null,
    returnUrl: 'https://shop.example.com/orders/return',
    metadata: { customerId: 'c-20260301-0042', campaign: 'spring' },
    clientToken: 'c3f1e6b2a9d84f0b8e7d6c5b4a392817',
    channelCode: 'wx_native',
    createdAt: at.toISOString(),
    paidAt: at.toISOString(),
    closedAt: null,
  };
}

function webhookJobs(setup: Setup): WebhookJob[] {
  const at = new Date();
  return Array.from({ length: setup.count }, (_, i) => ({
    eventId: String(i + 1),
    type: 'order.paid',
    createdAt: at.toISOString(),
    url: setup.hookUrl,
    data: orderData(i + 1, at),
  }));
}

async function receiverCall<T>(
  receiver: ServerProcess,
  method: 'GET' | 'POST',
  pathname: string,
): Promise<T> {
  const response = await fetch(`${receiver.baseUrl}${pathname}`, {
    method,
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 200) throw new Error(`receiver ${method} ${pathname} answered ${response.status}`);
  return (await response.json()) as T;
}

/** Waits until the receiver has every webhook of the phase; throws if the consumer dies or stalls. */
async function waitForDeliveries(
  setup: Setup,
  consumer: ChildProcessHandle,
  target: number,
): Promise<ReceiverStats> {
  const started = performance.now();
  let lastDistinct = -1;
  let lastProgress = started;
  for (;;) {
    const stats = await receiverCall<ReceiverStats>(setup.receiver, 'GET', '/stats');
    if (stats.completeAt !== null) return stats;
    if (stats.distinct !== lastDistinct) {
      lastDistinct = stats.distinct;
      lastProgress = performance.now();
    }
    const problem = (() => {
      try {
        consumer.cpuSeconds();
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
      if (performance.now() - lastProgress > STALL_MS) return `no new delivery for ${STALL_MS / 1000} s`;
      if (performance.now() - started > PHASE_LIMIT_MS) return `not done after ${PHASE_LIMIT_MS / 1000} s`;
      return undefined;
    })();
    if (problem !== undefined) {
      throw new Error(
        `${consumer.label}: ${problem}; ${stats.distinct} of ${target} webhooks arrived ` +
          `(${stats.badSignatures} bad signatures); it printed:\n${consumer.output() || '(nothing)'}`,
      );
    }
    await sleep(25);
  }
}

/**
 * CPU time so far of the PostgreSQL backends connected to the scratch database, by their PIDs (same
 * machine). A backend that disconnects takes its time with it, but the consumers keep their pools
 * for the length of a phase; PostgreSQL's background processes (WAL writer, checkpointer) are not
 * counted.
 */
async function databaseCpu(setup: Setup): Promise<Map<number, number>> {
  const { rows } = await withClient(setup.databaseUrl, (client) =>
    client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    ),
  );
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      cpu.set(pid, readCpuSeconds(pid));
    } catch {
      // Gone since the query, or not readable: nothing to count.
    }
  }
  return cpu;
}

function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

async function waitUntil(label: string, check: () => Promise<string | true>): Promise<void> {
  const deadline = performance.now() + SETTLE_LIMIT_MS;
  for (;;) {
    const state = await check();
    if (state === true) return;
    if (performance.now() > deadline) {
      throw new Error(`${label}: not settled after ${SETTLE_LIMIT_MS / 1000} s (${state})`);
    }
    await sleep(100);
  }
}

/**
 * One throughput phase: the consumer is running and idle; `enqueue` commits all the work at once; the
 * clock starts when it returns and stops at the receiver's arrival of the last distinct webhook.
 * Between the two, `ANALYZE` (on the clock): a production table has statistics, a table filled a
 * moment ago has none, and without them PostgreSQL may plan a claim as "read and sort every due row"
 * (measured: 6 ms per paycenter claim at 20,000 due tasks instead of 0.06 ms). Then `start` (the
 * wake-up paycenter's API would send; the peers' inserts wake their workers by themselves). Then
 * waits, untimed, until the consumer has recorded every delivery (`settled`).
 */
async function measure(
  label: string,
  setup: Setup,
  consumer: ChildProcessHandle,
  steps: {
    enqueue: () => Promise<void>;
    /** Default true; false for the yardstick without a database. */
    analyze?: boolean;
    start?: () => void;
    settled: () => Promise<string | true>;
  },
): Promise<Row> {
  await receiverCall(setup.receiver, 'POST', `/reset?target=${setup.count}`);
  const cpuBefore = consumer.cpuSeconds();
  await steps.enqueue();
  // After the enqueue, so only the consumer's statements count (and a few ms it may already be busy).
  const databaseBefore = await databaseCpu(setup);
  const startedAt = now();
  if (steps.analyze !== false) await withClient(setup.databaseUrl, (client) => client.query('ANALYZE'));
  steps.start?.();
  progress(`${label}: enqueued ${setup.count}; delivering`);
  const stats = await waitForDeliveries(setup, consumer, setup.count);
  const cpu = consumer.cpuSeconds() - cpuBefore;
  const databaseSeconds = cpuSince(databaseBefore, await databaseCpu(setup));
  if (stats.badSignatures > 0)
    throw new Error(`${label}: ${stats.badSignatures} webhooks had a bad signature`);
  const seconds = ((stats.completeAt ?? startedAt) - startedAt) / 1000;
  await waitUntil(`${label}: recording the deliveries`, steps.settled);
  const row: Row = {
    label,
    seconds,
    perSecond: setup.count / seconds,
    cpuMicrosPerWebhook: (cpu * 1e6) / setup.count,
    databaseMicrosPerWebhook: (databaseSeconds * 1e6) / setup.count,
    peakRssBytes: consumer.peakRssBytes(),
    duplicates: stats.requests - stats.distinct,
    bodyBytes: stats.bodyBytes / stats.requests,
  };
  progress(`${label}: ${Math.round(row.perSecond)} deliveries/s`);
  return row;
}

function profileArgs(label: string): string[] {
  const dir = process.env.BENCH_NOTIFY_CPU_PROF?.trim();
  if (!dir) return [];
  const absolute = path.resolve(dir);
  mkdirSync(absolute, { recursive: true });
  const name = label.replaceAll(/[^a-z0-9]+/gi, '-');
  return ['--cpu-prof', `--cpu-prof-dir=${absolute}`, `--cpu-prof-name=${name}.${Date.now()}.cpuprofile`];
}

// ---- paycenter ----

async function startPaycenterWorker(setup: Setup): Promise<ChildProcessHandle> {
  return startWorker(
    {
      label: PAYCENTER_LABEL,
      nodeArgs: [...profileArgs('paycenter'), PAYCENTER_CLI, 'start', '--role', 'worker'],
      cwd: REPO_ROOT,
      env: {
        DATABASE_URL: setup.databaseUrl,
        PAYCENTER_MASTER_KEY: setup.masterKey,
        // The receiver is on 127.0.0.1, which the address guard refuses otherwise.
        PAYCENTER_NOTIFY_ALLOW_PRIVATE: 'true',
        LOG_LEVEL: 'warn',
      },
      readyOutput: /worker running/,
    },
    setup.cleanup,
  );
}

async function measurePaycenter(setup: Setup, worker: ChildProcessHandle): Promise<Row> {
  // The wake-up an API instance sends after committing: WakeupBus from the build, its own connection.
  const dist = pathToFileURL(path.join(REPO_ROOT, 'packages/server/dist/notify/wakeup.js')).href;
  const { WakeupBus } = (await import(dist)) as WakeupModule;
  const wakeup = new WakeupBus({ connectionString: setup.databaseUrl });
  await wakeup.start();
  setup.cleanup.defer('stop the wake-up bus', () => wakeup.stop());
  const at = new Date();
  const template = orderData(0, at);
  try {
    return await measure(PAYCENTER_LABEL, setup, worker, {
      enqueue: async () => {
        // recordEvent's rows (an event, its task due now), all in one statement, so one commit.
        await withClient(setup.databaseUrl, (client) =>
          client.query(
            `WITH e AS (
               INSERT INTO events (app_id, type, payload, created_at)
               SELECT $1, 'order.paid',
                      $2::jsonb || jsonb_build_object('id', g::text, 'merchantOrderId', 'bench-' || g), $3
                 FROM generate_series(1, $4::int) AS g
               RETURNING id, created_at
             )
             INSERT INTO notify_tasks
               (event_id, app_id, url, max_attempts, next_attempt_at, created_at, updated_at)
             SELECT id, $1, $5, 9, created_at, created_at, created_at FROM e`,
            [setup.appId, JSON.stringify(template), at, setup.count, setup.hookUrl],
          ),
        );
      },
      start: () => wakeup.wake(),
      settled: async () => {
        const { rows } = await withClient(setup.databaseUrl, (client) =>
          client.query<{ succeeded: string; other: string }>(
            `SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                    count(*) FILTER (WHERE status <> 'succeeded') AS other
               FROM notify_tasks`,
          ),
        );
        const succeeded = Number(rows[0]?.succeeded);
        return succeeded === setup.count ? true : `${succeeded} tasks succeeded, ${rows[0]?.other} not yet`;
      },
    });
  } finally {
    await wakeup.stop();
  }
}

interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
  notifies: number;
}

async function measureLatency(setup: Setup, worker: ChildProcessHandle, seconds: number): Promise<Latency> {
  const port = await freePort();
  const writer = await startServer(
    {
      label: 'trickle writer',
      nodeArgs: nodeArgsToRun(path.join(REPO_ROOT, 'bench/notify-writer.ts')),
      cwd: REPO_ROOT,
      env: {
        DATABASE_URL: setup.databaseUrl,
        BENCH_APP_ID: setup.appId,
        BENCH_EVENT_DATA: JSON.stringify(orderData(0, new Date())),
        BENCH_RATE: String(TRICKLE_RATE),
        BENCH_TRICKLE_SECONDS: String(seconds),
        PORT: String(port),
      },
      port,
      readyPath: '/ready',
    },
    setup.cleanup,
  );
  const count = Math.round(TRICKLE_RATE * seconds);
  await receiverCall(setup.receiver, 'POST', `/reset?target=${count}`);
  progress(`latency: ${TRICKLE_RATE} tasks/s for ${seconds} s through the worker`);
  const response = await fetch(`${writer.baseUrl}/run`, {
    method: 'POST',
    signal: AbortSignal.timeout((seconds + 60) * 1000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`the trickle writer failed (${response.status}): ${text}`);
  const { commits, notifies } = JSON.parse(text) as { commits: Array<[string, number]>; notifies: number };
  await waitForDeliveries(setup, worker, count);
  await writer.stop();
  const arrivals = new Map(await receiverCall<Array<[string, number]>>(setup.receiver, 'GET', '/arrivals'));
  const latencies = commits
    .map(([eventId, committedAt]) => (arrivals.get(eventId) ?? Number.NaN) - committedAt)
    .sort((a, b) => a - b);
  if (latencies.some(Number.isNaN)) throw new Error('a trickled task never arrived');
  return {
    count,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? Number.NaN,
    notifies,
  };
}

// ---- the peers ----

async function startPeer(
  setup: Setup,
  peer: 'pg-boss' | 'graphile-worker' | 'none',
  config: PgBossPeerConfig | GraphilePeerConfig | NoQueueConfig,
): Promise<ChildProcessHandle> {
  return startWorker(
    {
      label: peer === 'none' ? NO_QUEUE_LABEL : `${peer} ${PEER_VERSIONS[peer]}`,
      nodeArgs: [...profileArgs(peer), ...nodeArgsToRun(path.join(REPO_ROOT, 'bench/notify-peer.ts'))],
      cwd: REPO_ROOT,
      env: {
        DATABASE_URL: setup.databaseUrl,
        BENCH_PEER: peer,
        BENCH_PEER_CONFIG: JSON.stringify(config),
        BENCH_QUEUE: QUEUE,
        BENCH_WEBHOOK_SECRET: setup.webhookSecret,
        BENCH_CONCURRENCY: String(IN_FLIGHT),
      },
      readyOutput: /^ready$/m,
      // The first start installs the queue's schema.
      readyTimeoutMs: 30_000,
    },
    setup.cleanup,
  );
}

/** The yardstick: the same webhooks through the same sender, from memory, no queue or database. */
async function measureNoQueue(setup: Setup): Promise<Row> {
  const at = new Date();
  const config: NoQueueConfig = {
    count: setup.count,
    job: {
      eventId: '0',
      type: 'order.paid',
      createdAt: at.toISOString(),
      url: setup.hookUrl,
      data: orderData(0, at),
    },
  };
  const sender = await startPeer(setup, 'none', config);
  try {
    return await measure(NO_QUEUE_LABEL, setup, sender, {
      enqueue: async () => {},
      analyze: false,
      // Its own child, by its PID: SIGUSR2 starts the sending.
      start: () => process.kill(sender.pid, 'SIGUSR2'),
      settled: async () => true,
    });
  } finally {
    await sender.stop();
  }
}

async function measurePgBoss(setup: Setup, config: PgBossPeerConfig): Promise<Row> {
  const consumer = await startPeer(setup, 'pg-boss', config);
  const { PgBoss } = await import('pg-boss');
  const schema = String(config.constructor.schema ?? 'pgboss');
  // The producer: an application instance that only sends (no workers, maintenance or listener).
  const boss = new PgBoss({
    connectionString: setup.databaseUrl,
    schema,
    supervise: false,
    schedule: false,
    migrate: false,
  });
  boss.on('error', (error) => progress(`pg-boss producer error: ${error.message}`));
  await boss.start();
  setup.cleanup.defer('stop the pg-boss producer', () => boss.stop({ graceful: false }));
  const jobs = webhookJobs(setup).map((data) => ({ data }));
  try {
    return await measure(consumer.label, setup, consumer, {
      enqueue: async () => {
        await boss.insert(QUEUE, jobs);
      },
      settled: async () => {
        const states = await withClient(setup.databaseUrl, async (client) => {
          const { rows } = await client.query<{ table_name: string }>(
            `SELECT table_name FROM ${schema}.queue WHERE name = $1`,
            [QUEUE],
          );
          const table = rows[0]?.table_name ?? 'job';
          return (
            await client.query<{ state: string; count: string }>(
              `SELECT state, count(*) FROM ${schema}."${table.replaceAll('"', '""')}"
                WHERE name = $1 GROUP BY state`,
              [QUEUE],
            )
          ).rows;
        });
        const completed = Number(states.find((s) => s.state === 'completed')?.count ?? 0);
        return completed === setup.count ? true : JSON.stringify(states);
      },
    });
  } finally {
    await boss.stop({ graceful: false });
    await consumer.stop();
  }
}

async function measureGraphileWorker(setup: Setup, config: GraphilePeerConfig): Promise<Row> {
  const consumer = await startPeer(setup, 'graphile-worker', config);
  const { makeWorkerUtils } = await import('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: setup.databaseUrl });
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await utils.release();
  };
  setup.cleanup.defer('release the graphile-worker utils', release);
  const specs = webhookJobs(setup).map((payload) => ({ identifier: QUEUE, payload }));
  try {
    return await measure(consumer.label, setup, consumer, {
      enqueue: async () => {
        await utils.addJobs(specs);
      },
      settled: async () => {
        // A completed job is deleted: done when no job is left.
        const left = await withClient(setup.databaseUrl, async (client) =>
          Number(
            (await client.query<{ count: string }>('SELECT count(*) FROM graphile_worker._private_jobs'))
              .rows[0]?.count,
          ),
        );
        return left === 0 ? true : `${left} jobs left`;
      },
    });
  } finally {
    await release();
    await consumer.stop();
  }
}

// ---- the run ----

function peerConfig<T>(variable: string, fallback: T): T {
  const raw = process.env[variable]?.trim();
  if (!raw) return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch (error) {
    throw new Error(`${variable} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const CONSUMERS = ['paycenter', 'pg-boss', 'graphile-worker'] as const;
type Consumer = (typeof CONSUMERS)[number];

function chosenConsumers(): Set<Consumer> {
  const raw = process.env.BENCH_NOTIFY_CONSUMERS?.trim();
  if (!raw) return new Set(CONSUMERS);
  const names = raw.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!(CONSUMERS as readonly string[]).includes(name)) {
      throw new Error(`BENCH_NOTIFY_CONSUMERS: unknown consumer "${name}" (known: ${CONSUMERS.join(', ')})`);
    }
  }
  return new Set(names as Consumer[]);
}

function taskCount(): number {
  const raw = process.env.BENCH_NOTIFY_TASKS?.trim();
  if (!raw) return 20_000;
  if (!/^\d+$/.test(raw) || Number(raw) < 100 || Number(raw) > 1_000_000) {
    throw new Error(`BENCH_NOTIFY_TASKS must be a whole number from 100 to 1,000,000 (got "${raw}")`);
  }
  return Number(raw);
}

function formatRows(rows: readonly Row[]): string {
  const columns = [
    'deliveries/s',
    'seconds',
    'CPU µs/webhook',
    'PG CPU µs/webhook',
    'peak RSS',
    'duplicates',
  ];
  const line = (label: string, cells: readonly string[]) =>
    label.padEnd(26) + cells.map((cell, i) => cell.padStart((columns[i]?.length ?? 0) + 3)).join('');
  return [
    line('', columns),
    ...rows.map((row) =>
      line(row.label, [
        Math.round(row.perSecond).toLocaleString('en-US'),
        row.seconds.toFixed(2),
        Math.round(row.cpuMicrosPerWebhook).toLocaleString('en-US'),
        Math.round(row.databaseMicrosPerWebhook).toLocaleString('en-US'),
        `${Math.round(row.peakRssBytes / (1024 * 1024))} MB`,
        String(row.duplicates),
      ]),
    ),
  ].join('\n');
}

/** Other work on the machine takes the cores this measures: say how busy it was. */
function machineLoad(): string {
  return `load average ${os.loadavg()[0]?.toFixed(1)} on ${os.availableParallelism()} cores`;
}

export async function run(cleanup: Cleanup): Promise<void> {
  const loadBefore = machineLoad();
  const count = taskCount();
  const trickleSeconds = measuredSeconds();
  const consumers = chosenConsumers();
  const pgBoss = peerConfig('BENCH_PGBOSS_CONFIG', PG_BOSS);
  const graphile = peerConfig('BENCH_GRAPHILE_CONFIG', GRAPHILE_WORKER);

  progress('building packages/server');
  await buildServer();
  const database = await createScratchDatabase(adminDatabaseUrl(), 'paycenter_bench');
  cleanup.defer(`drop database ${database.name}`, database.drop);
  progress(`created database ${database.name}`);

  const receiverPort = await freePort();
  const hookUrl = `http://127.0.0.1:${receiverPort}/hook`;
  const masterKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
  // Migrates the scratch database too.
  const created = JSON.parse(
    await runPaycenterCommand(['app', 'create', '--name', 'bench', '--notify-url', hookUrl, '--json'], {
      DATABASE_URL: database.url,
      PAYCENTER_MASTER_KEY: masterKey,
      LOG_LEVEL: 'warn',
    }),
  ) as { id: string; webhookSecret: string };
  const receiver = await startServer(
    {
      label: 'receiver',
      nodeArgs: nodeArgsToRun(path.join(REPO_ROOT, 'bench/notify-receiver.ts')),
      cwd: REPO_ROOT,
      env: { PORT: String(receiverPort), BENCH_WEBHOOK_SECRET: created.webhookSecret },
      port: receiverPort,
      readyPath: '/ready',
    },
    cleanup,
  );
  const setup: Setup = {
    databaseUrl: database.url,
    receiver,
    hookUrl,
    appId: created.id,
    webhookSecret: created.webhookSecret,
    masterKey,
    count,
    cleanup,
  };

  const rows: Row[] = [];
  let latency: Latency | undefined;
  rows.push(await measureNoQueue(setup));
  // One consumer at a time: on 2 cores an idle neighbour still costs timer ticks and connections.
  if (consumers.has('paycenter')) {
    const worker = await startPaycenterWorker(setup);
    rows.push(await measurePaycenter(setup, worker));
    latency = await measureLatency(setup, worker, trickleSeconds);
    await worker.stop();
  }
  if (consumers.has('pg-boss')) rows.push(await measurePgBoss(setup, pgBoss));
  if (consumers.has('graphile-worker')) rows.push(await measureGraphileWorker(setup, graphile));
  await receiver.stop();
  const loadAfter = machineLoad();

  const version = await postgresVersion(database.url);
  const paycenterRow = rows.find((row) => row.label === PAYCENTER_LABEL);
  const yardstick = rows.find((row) => row.label === NO_QUEUE_LABEL);
  const peers = rows.filter((row) => row !== paycenterRow && row !== yardstick);
  const best = peers.reduce<Row | undefined>(
    (a, b) => (a === undefined || b.perSecond > a.perSecond ? b : a),
    undefined,
  );
  const bodies = rows.map((row) => Math.round(row.bodyBytes));
  console.log(
    [
      `notify: ${count.toLocaleString('en-US')} webhooks to a local keep-alive receiver (200 SUCCESS), ` +
        `${IN_FLIGHT} in flight, PostgreSQL ${version}, Node ${process.version}`,
      formatRows(rows),
      ...(paycenterRow && best
        ? [
            `ratio paycenter / best peer (${best.label}): ${(paycenterRow.perSecond / best.perSecond).toFixed(2)} ` +
              `(aim >= ${RATIO_AIM})`,
          ]
        : []),
      ...(yardstick
        ? [
            `share of the sender alone: ${rows
              .filter((row) => row !== yardstick)
              .map((row) => `${row.label} ${Math.round((100 * row.perSecond) / yardstick.perSecond)} %`)
              .join(', ')}`,
          ]
        : []),
      ...(latency
        ? [
            `commit → first try through paycenter at ${TRICKLE_RATE} tasks/s for ${trickleSeconds} s ` +
              `(${latency.count} tasks, writer and worker in separate processes): ` +
              `p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms, max ${latency.max.toFixed(1)} ms ` +
              `(aim p99 < ${P99_AIM_MS} ms); ${latency.notifies} wake-up NOTIFYs sent`,
          ]
        : []),
      `webhook body ${Math.min(...bodies)}–${Math.max(...bodies)} bytes; CPU and RSS: the consumer process's ` +
        "own; PG CPU: the database's backends serving it (the enqueue, ANALYZE and PostgreSQL's background " +
        'processes not counted)',
      `machine: ${loadBefore} before, ${loadAfter} after`,
      'configuration:',
      ...(consumers.has('paycenter')
        ? [
            `  ${PAYCENTER_LABEL}: paycenter start --role worker, defaults (batchSize 100, prefetch 100, ` +
              'concurrency 64, perHostConcurrency 16, pollIntervalMs 1000), PAYCENTER_NOTIFY_ALLOW_PRIVATE=true',
          ]
        : []),
      ...(consumers.has('pg-boss')
        ? [`  pg-boss ${PEER_VERSIONS['pg-boss']}: ${JSON.stringify(pgBoss)}`]
        : []),
      ...(consumers.has('graphile-worker')
        ? [`  graphile-worker ${PEER_VERSIONS['graphile-worker']}: ${JSON.stringify(graphile)}`]
        : []),
    ].join('\n'),
  );
}
