/**
 * A webhook consumer for `npm run bench -- notify` built on one of the PostgreSQL job queues a user
 * would pick instead of paycenter's dispatcher: pg-boss or graphile-worker (BENCH_PEER), configured by
 * BENCH_PEER_CONFIG (JSON; bench/notify.ts chooses it and prints it with the results). Or no queue at
 * all (BENCH_PEER=none): the same webhooks from memory, sent when the process gets SIGUSR2, the
 * yardstick of what sending alone costs.
 *
 * One job is one webhook, sent by paycenter's own WebhookSender from the build: the same undici
 * keep-alive pool (BENCH_CONCURRENCY connections to the receiver), the same Standard Webhooks
 * HMAC-SHA256 signing, the same body, the answer read and judged by the same outcome rule. So the
 * queue machinery is the only difference. A webhook that was not delivered throws, so the queue
 * retries it as it would in production.
 *
 * Prints "ready" once it is consuming; SIGTERM stops it gracefully. Environment: DATABASE_URL (not
 * for none), BENCH_PEER, BENCH_PEER_CONFIG, BENCH_QUEUE, BENCH_WEBHOOK_SECRET, BENCH_CONCURRENCY.
 * Run as plain JavaScript by the benchmark (see support/typescript.ts), from the repository root.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The job's data: what a user would enqueue for a webhook. */
export interface WebhookJob {
  eventId: string;
  type: string;
  createdAt: string;
  url: string;
  data: Record<string, unknown>;
}

export interface PgBossPeerConfig {
  /** `new PgBoss({ connectionString, ...constructor })`. */
  constructor: Record<string, unknown>;
  /** `createQueue('notify', queue)`. */
  queue: Record<string, unknown>;
  /** `work('notify', work, handler)`. */
  work: Record<string, unknown>;
  /**
   * How a worker's handler sends the batch it fetched: one after another (in flight: localConcurrency)
   * or all at once (in flight: localConcurrency × batchSize).
   */
  batchHandling: 'sequential' | 'parallel';
}

export interface GraphilePeerConfig {
  /** `run({ preset: { worker }, taskList: { notify }, … })`. */
  worker: Record<string, unknown>;
}

export interface NoQueueConfig {
  count: number;
  /** Every webhook's job but for `eventId` and `data.id`, which count from 1. */
  job: WebhookJob;
}

type SenderModule = typeof import('../packages/server/src/notify/sender.js');

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const peer = required('BENCH_PEER');
const config: unknown = JSON.parse(required('BENCH_PEER_CONFIG'));
const concurrency = Number(required('BENCH_CONCURRENCY'));
/** The queue (pg-boss) or task identifier (graphile-worker) the jobs are enqueued under. */
const queue = required('BENCH_QUEUE');

// The build's modules, by path: this file runs as an --eval script, which resolves only packages.
const built = (file: string) => pathToFileURL(path.join(process.cwd(), 'packages/server/dist', file)).href;
const { WebhookSender, webhookBody, webhookSecretKey } = (await import(
  built('notify/sender.js')
)) as SenderModule;

const sender = new WebhookSender({
  timeoutMs: 10_000,
  allowPrivate: true,
  connectionsPerOrigin: concurrency,
});
const secretKey = webhookSecretKey(required('BENCH_WEBHOOK_SECRET'));

async function deliver(job: WebhookJob): Promise<void> {
  const result = await sender.send({
    url: job.url,
    webhookId: job.eventId,
    body: webhookBody({
      id: job.eventId,
      type: job.type,
      createdAt: new Date(job.createdAt),
      data: job.data,
    }),
    secretKey,
    timestamp: new Date(),
  });
  if (!result.outcome.delivered)
    throw new Error(`webhook ${job.eventId} not delivered: ${result.outcome.reason}`);
}

async function startPgBoss(options: PgBossPeerConfig): Promise<() => Promise<void>> {
  const { PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: required('DATABASE_URL'), ...options.constructor });
  boss.on('error', (error) => console.error(`pg-boss error: ${error.message}`));
  boss.on('warning', (warning) => console.error(`pg-boss warning: ${warning.message}`));
  await boss.start();
  await boss.createQueue(queue, options.queue);
  await boss.work<WebhookJob>(queue, options.work, async (jobs) => {
    if (options.batchHandling === 'parallel') {
      await Promise.all(jobs.map((job) => deliver(job.data)));
    } else {
      for (const job of jobs) await deliver(job.data);
    }
  });
  return () => boss.stop({ graceful: true, timeout: 10_000 });
}

async function startGraphileWorker(options: GraphilePeerConfig): Promise<() => Promise<void>> {
  const { run, Logger } = await import('graphile-worker');
  // The default logger prints a line per job: a real deployment would not, and it would be measured.
  const logger = new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`);
  });
  const runner = await run({
    preset: { worker: { connectionString: required('DATABASE_URL'), ...options.worker } },
    logger,
    noHandleSignals: true,
    crontab: '',
    taskList: { [queue]: (payload) => deliver(payload as WebhookJob) },
  });
  return () => runner.stop();
}

/** Sends `count` webhooks, `concurrency` at a time, on SIGUSR2. */
async function startNoQueue(options: NoQueueConfig): Promise<() => Promise<void>> {
  let sending: Promise<unknown> | undefined;
  // Nothing else keeps this process alive while it waits for the signal.
  const idle = setInterval(() => {}, 60_000);
  process.once('SIGUSR2', () => {
    let next = 1;
    sending = Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next <= options.count) {
          const id = String(next++);
          await deliver({ ...options.job, eventId: id, data: { ...options.job.data, id } });
        }
      }),
    ).catch((error: unknown) => console.error(error instanceof Error ? error.message : String(error)));
  });
  return async () => {
    clearInterval(idle);
    await sending;
  };
}

const stop =
  peer === 'pg-boss'
    ? await startPgBoss(config as PgBossPeerConfig)
    : peer === 'graphile-worker'
      ? await startGraphileWorker(config as GraphilePeerConfig)
      : peer === 'none'
        ? await startNoQueue(config as NoQueueConfig)
        : undefined;
if (stop === undefined) throw new Error(`BENCH_PEER must be pg-boss, graphile-worker or none (got ${peer})`);
console.log('ready');

process.once('SIGTERM', () => {
  stop()
    .then(() => sender.close())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
});
