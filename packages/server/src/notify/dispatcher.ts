import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import { randomBase62 } from '../crypto/tokens.js';
import type { DB, NotifyTaskStatus } from '../db/schema.js';
import { type NotifyLogger, silentLogger } from './logger.js';
import { NotifyMetrics, type TryOutcome } from './metrics.js';
import {
  type ClaimedTask,
  type Completion,
  claimDueTasks,
  completeTries,
  releaseTasks,
} from './notify.repository.js';
import { defaultNotifySchedule, delayAfterAttempt } from './schedule.js';
import { type TryResult, WebhookSender, webhookBody, webhookSecretKey } from './sender.js';
import type { WakeupBus } from './wakeup.js';

export interface DispatcherOptions {
  /** Most tasks claimed in one round trip. Default 100. */
  batchSize?: number;
  /** Webhooks in flight at once. Default 64. */
  concurrency?: number;
  /** Webhooks in flight at once to one destination host; more wait in a short queue. Default 16. */
  perHostConcurrency?: number;
  /** How long a claim holds a task; a dead dispatcher's tasks return after it. Default 60 s, at least 2 × timeout + 5 s. */
  leaseMs?: number;
  /** Look for due tasks this often without a wake-up (retries, other instances' tasks). Default 1000 ms. */
  pollIntervalMs?: number;
  /** A claimed task whose host already has a full queue is handed back for this long. Default 2000 ms. */
  hostBusyDelayMs?: number;
  /** HTTP timeout of one try. Default 10 s. */
  timeoutMs?: number;
  /** Allow loopback/private/link-local destinations (PAYCENTER_NOTIFY_ALLOW_PRIVATE). Default false. */
  allowPrivate?: boolean;
  /** Decrypted webhook secrets are kept this long (they change only on rotation). Default 60 s. */
  secretCacheMs?: number;
  /** Log the metrics this often when there was activity; 0 turns it off. Default 60 s. */
  metricsLogIntervalMs?: number;
  /** Names this dispatcher in `locked_by`. Default host:pid:random. */
  workerId?: string;
}

export interface DispatcherDependencies {
  db: Kysely<DB>;
  /** Schedule math and leases; tests pass a ManualClock. */
  clock: Clock;
  /** The app's whsec_ secret, decrypted: `(appId) => apps.webhookSecret(appId)`. */
  webhookSecret: (appId: string) => Promise<string>;
  /** Wake-ups from this process and, on PostgreSQL, other instances. */
  wakeup?: WakeupBus | undefined;
  logger?: NotifyLogger | undefined;
  metrics?: NotifyMetrics | undefined;
  /** Replaces the sender built from the options (tests). */
  sender?: WebhookSender | undefined;
  /** The schedule of apps without one. Default: defaultNotifySchedule(). */
  defaultSchedule?: (() => readonly number[]) | undefined;
}

interface Queued {
  task: ClaimedTask;
  done: () => void;
}

/**
 * Delivers notify tasks. Claims due tasks in batches (FOR UPDATE SKIP LOCKED plus a lease, so any
 * number of dispatchers share one database and a dead one's tasks come back when its lease ends),
 * sends them concurrently within a global and a per-host limit, and writes the results back in
 * batches: one statement updates every finished task and inserts every try's log row.
 *
 * Started (`start()`), it claims when woken (in-process after a commit, or by another instance's
 * NOTIFY), when capacity frees up while a backlog remains, and every `pollIntervalMs`. Tests drive
 * it without timers through `runOnce()`/`drain()` and a ManualClock.
 */
export class NotifyDispatcher {
  readonly workerId: string;
  readonly metrics: NotifyMetrics;
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;
  readonly #logger: NotifyLogger;
  readonly #sender: WebhookSender;
  readonly #ownsSender: boolean;
  readonly #webhookSecret: (appId: string) => Promise<string>;
  readonly #defaultSchedule: () => readonly number[];
  readonly #wakeup: WakeupBus | undefined;
  readonly #batchSize: number;
  readonly #concurrency: number;
  readonly #perHost: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #hostBusyDelayMs: number;
  readonly #secretCacheMs: number;
  readonly #metricsLogIntervalMs: number;
  /** Claim again before the slots are all free, but not for every single one: batches stay batches. */
  readonly #minClaim: number;

  #running = false;
  #stopping = false;
  #sending = 0;
  readonly #sendingPerHost = new Map<string, number>();
  readonly #queues = new Map<string, Queued[]>();
  #queued = 0;
  #claiming: Promise<void> | undefined;
  /** A wake-up arrived: look for due tasks. */
  #wanted = false;
  /** The last claim came back full: there is probably more due right now. */
  #backlog = false;
  readonly #inFlight = new Set<Promise<void>>();
  #completions: Completion[] = [];
  #flushing: Promise<void> | undefined;
  readonly #secrets = new Map<string, { key: Promise<Buffer>; expires: number }>();
  #pollTimer: NodeJS.Timeout | undefined;
  #metricsTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #loggedTries = 0;
  #stopped: Promise<void> | undefined;

  constructor(deps: DispatcherDependencies, options: DispatcherOptions = {}) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#logger = deps.logger ?? silentLogger;
    this.metrics = deps.metrics ?? new NotifyMetrics();
    this.#webhookSecret = deps.webhookSecret;
    this.#defaultSchedule = deps.defaultSchedule ?? defaultNotifySchedule;
    this.#wakeup = deps.wakeup;
    this.#ownsSender = deps.sender === undefined;
    this.#sender =
      deps.sender ??
      new WebhookSender({
        timeoutMs: options.timeoutMs ?? 10_000,
        allowPrivate: options.allowPrivate ?? false,
        connectionsPerOrigin: options.perHostConcurrency ?? 16,
      });
    this.#batchSize = positive('batchSize', options.batchSize ?? 100);
    this.#concurrency = positive('concurrency', options.concurrency ?? 64);
    this.#perHost = positive(
      'perHostConcurrency',
      Math.min(options.perHostConcurrency ?? 16, this.#concurrency),
    );
    this.#leaseMs = options.leaseMs ?? Math.max(60_000, 2 * this.#sender.timeoutMs + 5_000);
    if (this.#leaseMs < 2 * this.#sender.timeoutMs + 5_000) {
      throw new Error(
        `the notify lease (${this.#leaseMs} ms) must exceed twice the send timeout plus 5 s (${2 * this.#sender.timeoutMs + 5_000} ms): a task waits for at most one try of its host before its own`,
      );
    }
    this.#pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 1000);
    this.#hostBusyDelayMs = positive('hostBusyDelayMs', options.hostBusyDelayMs ?? 2000);
    this.#secretCacheMs = options.secretCacheMs ?? 60_000;
    this.#metricsLogIntervalMs = options.metricsLogIntervalMs ?? 60_000;
    this.#minClaim = Math.max(1, Math.floor(Math.min(this.#batchSize, this.#concurrency) / 4));
    this.workerId = options.workerId ?? `${os.hostname()}:${process.pid}:${randomBase62(6)}`;
  }

  get running(): boolean {
    return this.#running && !this.#stopping;
  }

  /** Starts claiming: now, on every wake-up, and every pollIntervalMs. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#stopping = false;
    this.#unsubscribe = this.#wakeup?.subscribe(() => this.wake());
    this.#pollTimer = setInterval(() => this.wake(), this.#pollIntervalMs);
    if (this.#metricsLogIntervalMs > 0) {
      this.#metricsTimer = setInterval(() => this.#logMetrics(), this.#metricsLogIntervalMs);
      this.#metricsTimer.unref();
    }
    this.wake();
  }

  /** New tasks may be due: look now (if there is room), not at the next poll. */
  wake(): void {
    this.#wanted = true;
    this.#kick();
  }

  /**
   * Graceful stop: no more claims; tasks claimed but not started are handed back at once; tries in
   * flight finish (each within the send timeout) and their results are written.
   */
  stop(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    this.#stopped ??= this.#stop().finally(() => {
      this.#stopped = undefined;
    });
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#pollTimer);
    clearInterval(this.#metricsTimer);
    this.#unsubscribe?.();
    await this.#claiming;
    const unstarted: Queued[] = [];
    for (const queue of this.#queues.values()) unstarted.push(...queue.splice(0));
    this.#queues.clear();
    this.#queued = 0;
    if (unstarted.length > 0) {
      try {
        await releaseTasks(
          this.#db,
          this.workerId,
          unstarted.map((q) => q.task.id),
          null,
        );
      } catch (error) {
        this.#logger.warn(
          { err: error },
          'handing back unstarted notify tasks failed; their lease will expire',
        );
      }
      for (const q of unstarted) q.done();
    }
    await Promise.all([...this.#inFlight]);
    await this.#flushed();
    this.#logMetrics();
    this.#running = false;
    this.#stopping = false;
  }

  /** stop(), then closes the connections of the sender this dispatcher made. */
  async close(): Promise<void> {
    await this.stop();
    if (this.#ownsSender) await this.#sender.close();
  }

  /**
   * One claim round for tests and tools: claims up to a batch of due tasks, tries them all, writes the
   * results. Returns how many tasks were claimed.
   */
  async runOnce(): Promise<number> {
    const room = this.#concurrency - this.#sending - this.#queued;
    if (room <= 0) return 0;
    const tasks = await this.#claim(Math.min(this.#batchSize, room));
    await Promise.all(this.#dispatch(tasks));
    await this.#flushed();
    return tasks.length;
  }

  /** runOnce() until nothing is due (at the clock's present time). Returns the tasks claimed in all. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const claimed = await this.runOnce();
      total += claimed;
      if (claimed === 0) return total;
    }
  }

  // ---- claiming ----

  /** Whether a claim should run now: asked for, and room for a batch (or for anything when idle). */
  #shouldClaim(): boolean {
    if (!this.#running || this.#stopping || !(this.#wanted || this.#backlog)) return false;
    const room = this.#concurrency - this.#sending - this.#queued;
    const idle = this.#sending + this.#queued === 0;
    return room > 0 && (idle || room >= this.#minClaim);
  }

  #kick(): void {
    if (this.#claiming || !this.#shouldClaim()) return;
    this.#claiming = this.#claimLoop().finally(() => {
      this.#claiming = undefined;
      // A wake-up may have come in between the loop's last check and now.
      this.#kick();
    });
  }

  async #claimLoop(): Promise<void> {
    // Finishing tries call #kick again, so when there is no room the flags stay set until there is.
    while (this.#shouldClaim()) {
      this.#wanted = false;
      const limit = Math.min(this.#batchSize, this.#concurrency - this.#sending - this.#queued);
      let tasks: ClaimedTask[];
      try {
        tasks = await this.#claim(limit);
      } catch (error) {
        this.#backlog = false;
        this.#logger.error({ err: error }, 'claiming notify tasks failed; retrying at the next poll');
        return;
      }
      this.#backlog = tasks.length === limit;
      for (const done of this.#dispatch(tasks)) {
        this.#inFlight.add(done);
        void done.finally(() => this.#inFlight.delete(done));
      }
    }
  }

  async #claim(limit: number): Promise<ClaimedTask[]> {
    const now = this.#clock.now();
    const tasks = await claimDueTasks(this.#db, {
      now,
      leaseUntil: new Date(now.getTime() + this.#leaseMs),
      workerId: this.workerId,
      limit,
    });
    this.metrics.claims++;
    this.metrics.claimedTasks += tasks.length;
    return tasks;
  }

  /** Starts what the host limits allow, queues a few more per host, hands the rest back for a while. */
  #dispatch(tasks: readonly ClaimedTask[]): Promise<void>[] {
    const started: Promise<void>[] = [];
    const busy: string[] = [];
    for (const task of tasks) {
      const host = hostOf(task.url);
      if ((this.#sendingPerHost.get(host) ?? 0) < this.#perHost) {
        started.push(this.#start(task, host));
        continue;
      }
      let queue = this.#queues.get(host);
      if (!queue) {
        queue = [];
        this.#queues.set(host, queue);
      }
      if (queue.length < this.#perHost) {
        const target = queue;
        started.push(
          new Promise<void>((done) => {
            target.push({ task, done });
          }),
        );
        this.#queued++;
      } else {
        busy.push(task.id);
      }
    }
    if (busy.length > 0) {
      const until = new Date(this.#clock.now().getTime() + this.#hostBusyDelayMs);
      started.push(
        releaseTasks(this.#db, this.workerId, busy, until).then(
          () => {},
          (error: unknown) => {
            this.#logger.warn({ err: error }, 'handing back notify tasks of a busy host failed');
          },
        ),
      );
    }
    return started;
  }

  async #start(task: ClaimedTask, host: string): Promise<void> {
    this.#sending++;
    this.#sendingPerHost.set(host, (this.#sendingPerHost.get(host) ?? 0) + 1);
    try {
      await this.#try(task);
    } catch (error) {
      // #try does not throw; if it ever does, the lease brings the task back.
      this.#logger.error({ err: error, taskId: task.id }, 'notify try crashed');
    } finally {
      this.#sending--;
      const left = (this.#sendingPerHost.get(host) ?? 1) - 1;
      if (left === 0) this.#sendingPerHost.delete(host);
      else this.#sendingPerHost.set(host, left);
      const next = this.#stopping ? undefined : this.#queues.get(host)?.shift();
      if (next) {
        this.#queued--;
        if (this.#queues.get(host)?.length === 0) this.#queues.delete(host);
        void this.#start(next.task, host).then(next.done);
      }
      this.#kick();
    }
  }

  // ---- one try ----

  async #try(task: ClaimedTask): Promise<void> {
    const attemptNo = task.attempts + 1;
    const startedAt = this.#clock.now();
    if (attemptNo === 1) {
      this.metrics.firstTryLatencyMs.observe(Math.max(0, startedAt.getTime() - task.createdAt.getTime()));
    }
    let result: TryResult;
    try {
      const secretKey = await this.#secretKey(task.appId);
      result = await this.#sender.send({
        url: task.url,
        webhookId: task.eventId,
        body: webhookBody({
          id: task.eventId,
          type: task.eventType,
          createdAt: task.eventCreatedAt,
          data: task.payload,
        }),
        secretKey,
        timestamp: startedAt,
      });
    } catch (error) {
      const reason = `cannot sign the webhook: ${error instanceof Error ? error.message : String(error)}`;
      result = {
        outcome: { delivered: false, reason },
        httpStatus: null,
        excerpt: null,
        error: reason,
        refused: false,
        durationMs: 0,
      };
    }
    const at = this.#clock.now();
    const reason = result.outcome.delivered ? null : result.outcome.reason;
    let status: NotifyTaskStatus;
    let nextAttemptAt: Date | null = null;
    if (result.outcome.delivered) {
      status = 'succeeded';
    } else if (attemptNo >= task.maxAttempts) {
      status = 'failed';
    } else {
      status = 'pending';
      const delay = delayAfterAttempt(task.schedule ?? this.#defaultSchedule(), attemptNo);
      nextAttemptAt = new Date(at.getTime() + delay * 1000);
    }
    this.#complete({
      taskId: task.id,
      attemptNo,
      status,
      nextAttemptAt,
      lastError: reason,
      httpStatus: result.httpStatus,
      excerpt: result.excerpt,
      error: reason,
      durationMs: result.durationMs,
      at,
    });

    const outcome: TryOutcome = result.outcome.delivered
      ? 'delivered'
      : result.refused
        ? 'refused'
        : result.httpStatus === null
          ? 'error'
          : 'rejected';
    this.metrics.tries[outcome]++;
    this.metrics.tryDurationMs.observe(result.durationMs);
    const context = { taskId: task.id, eventId: task.eventId, attempt: attemptNo, url: task.url };
    if (status === 'succeeded') {
      this.metrics.tasks.succeeded++;
      this.metrics.deliveryLatencyMs.observe(Math.max(0, at.getTime() - task.createdAt.getTime()));
    } else if (status === 'failed') {
      this.metrics.tasks.failed++;
      this.#logger.warn({ ...context, reason }, 'webhook failed after its last scheduled try');
    } else if (result.refused) {
      this.#logger.warn({ ...context, reason }, 'webhook destination refused');
    } else {
      this.#logger.debug({ ...context, reason, nextAttemptAt }, 'webhook try failed; retrying later');
    }
  }

  #secretKey(appId: string): Promise<Buffer> {
    const now = performance.now();
    const cached = this.#secrets.get(appId);
    if (cached && cached.expires > now) return cached.key;
    const key = this.#webhookSecret(appId).then(webhookSecretKey);
    const entry = { key, expires: now + this.#secretCacheMs };
    this.#secrets.set(appId, entry);
    key.catch(() => {
      if (this.#secrets.get(appId) === entry) this.#secrets.delete(appId);
    });
    return key;
  }

  // ---- writing results back ----

  #complete(completion: Completion): void {
    this.#completions.push(completion);
    this.#flushing ??= this.#flushLoop().finally(() => {
      this.#flushing = undefined;
    });
  }

  /**
   * Group commit: results arriving while a write runs are written together by the next one, so the
   * batch size follows the load (one statement per try when idle, hundreds when busy).
   */
  async #flushLoop(): Promise<void> {
    await nextTurn();
    while (this.#completions.length > 0) {
      const batch = this.#completions.splice(0, 500);
      await this.#write(batch);
    }
  }

  async #flushed(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #write(batch: Completion[]): Promise<void> {
    let updated: Set<string>;
    try {
      updated = await completeTries(this.#db, this.workerId, batch);
    } catch (error) {
      this.#logger.warn({ err: error, tries: batch.length }, 'writing notify results failed; retrying');
      await sleep(200);
      updated = new Set();
      // One at a time, so one bad row cannot lose the others.
      for (const completion of batch) {
        try {
          for (const id of await completeTries(this.#db, this.workerId, [completion])) updated.add(id);
        } catch (single) {
          this.#logger.error(
            { err: single, taskId: completion.taskId },
            'writing a notify result failed; the task is tried again when its lease ends',
          );
          updated.add(completion.taskId);
        }
      }
    }
    if (updated.size < batch.length) {
      for (const completion of batch) {
        if (!updated.has(completion.taskId)) {
          this.#logger.warn(
            { taskId: completion.taskId, attempt: completion.attemptNo },
            'a notify try finished after its lease was lost; another dispatcher owns the task now',
          );
        }
      }
    }
  }

  #logMetrics(): void {
    const tries = this.metrics.totalTries();
    if (tries === this.#loggedTries) return;
    this.#loggedTries = tries;
    this.#logger.info({ notify: this.metrics.snapshot() }, 'webhook delivery');
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}
