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
  /**
   * Most tasks held claimed but not yet started (waiting for their host or a free slot). A claim runs
   * once at least half of this is free and takes no more than is free, so what is claimed can be
   * started without handing it back. Default batchSize.
   */
  prefetch?: number;
  /** Webhooks in flight at once. Default 64. */
  concurrency?: number;
  /** Webhooks in flight at once to one destination host; more wait in that host's local queue. Default 16. */
  perHostConcurrency?: number;
  /** How long a claim holds a task; a dead dispatcher's tasks return after it. Default 60 s, at least 2 × timeout + 5 s. */
  leaseMs?: number;
  /** Look for due tasks this often without a wake-up (retries, other instances' tasks). Default 1000 ms. */
  pollIntervalMs?: number;
  /**
   * A host's local queue holds what its tries are expected to start within this long (at least
   * perHostConcurrency, at most prefetch); claimed tasks beyond that are handed back for this long.
   * Default 2000 ms.
   */
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
}

/** A try is started only while the lease still covers it: its timeout plus this margin. */
const LEASE_MARGIN_MS = 5_000;
/** How many hosts' try durations are remembered (for their queue length) once they have no work. */
const REMEMBERED_HOSTS = 4096;

/** What one claim returned, and until when (epoch ms on the clock) it holds those tasks. */
interface Claimed {
  tasks: ClaimedTask[];
  leaseEnd: number;
}

/** A claimed task this dispatcher holds. */
interface Held {
  task: ClaimedTask;
  /** Until when the claim holds it, epoch ms on the injected clock. */
  leaseEnd: number;
  /** When it was put in its host's queue, epoch ms. */
  queuedAt: number;
  /** Settles the task's promise: tried (result queued for writing) or handed back. */
  done: () => void;
}

/** One destination host's work in this dispatcher. */
interface Host {
  readonly name: string;
  sending: number;
  /** Claimed, not started, oldest first. */
  queue: Held[];
}

/**
 * Delivers notify tasks. Claims due tasks in batches (FOR UPDATE SKIP LOCKED plus a lease, so any
 * number of dispatchers share one database and a dead one's tasks come back when its lease ends),
 * sends them concurrently within a global and a per-host limit, and writes the results back in
 * batches: one statement updates every finished task and inserts every try's log row.
 *
 * Claimed tasks that cannot start at once wait in their host's local queue. A claim runs only when
 * at least half of `prefetch` is free and takes at most what is free, so a burst to one host is
 * claimed ahead of its limit instead of being claimed, handed back and claimed again. Each host's
 * queue is bounded by how fast the host answers (about `hostBusyDelayMs` of its tries, from
 * perHostConcurrency up to prefetch), so a slow host cannot fill the queue and hold up the others:
 * what exceeds its bound is handed back for `hostBusyDelayMs`. A queued task starts only if its lease
 * still covers a whole try; otherwise it is handed back unsent.
 *
 * Started (`start()`), it claims when woken (in-process after a commit, or by another instance's
 * NOTIFY), when tries finish while a backlog remains, and every `pollIntervalMs`. Tests drive it
 * without timers through `runOnce()`/`drain()` and a ManualClock.
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
  readonly #wakeup: WakeupBus | undefined;
  readonly #batchSize: number;
  readonly #prefetch: number;
  readonly #concurrency: number;
  readonly #perHost: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #hostBusyDelayMs: number;
  readonly #secretCacheMs: number;
  readonly #metricsLogIntervalMs: number;
  /** Claim again once this much of prefetch is free, not for every single task: batches stay batches. */
  readonly #minClaim: number;

  #running = false;
  #stopping = false;
  #sending = 0;
  /** Hosts with tries in flight or queued. */
  readonly #hosts = new Map<string, Host>();
  /** Hosts with a non-empty queue, in the order they get the next free slot (round robin). */
  readonly #waiting = new Map<string, Host>();
  /** Smoothed try duration per host, ms on the clock; the most recently used REMEMBERED_HOSTS. */
  readonly #tryMs = new Map<string, number>();
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
    this.#prefetch = positive('prefetch', options.prefetch ?? this.#batchSize);
    this.#concurrency = positive('concurrency', options.concurrency ?? 64);
    this.#perHost = positive(
      'perHostConcurrency',
      Math.min(options.perHostConcurrency ?? 16, this.#concurrency),
    );
    this.#leaseMs = options.leaseMs ?? Math.max(60_000, 2 * this.#sender.timeoutMs + LEASE_MARGIN_MS);
    if (this.#leaseMs < 2 * this.#sender.timeoutMs + LEASE_MARGIN_MS) {
      throw new Error(
        `the notify lease (${this.#leaseMs} ms) must exceed twice the send timeout plus 5 s (${2 * this.#sender.timeoutMs + LEASE_MARGIN_MS} ms): a queued task is started only while its lease covers a whole try`,
      );
    }
    this.#pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 1000);
    this.#hostBusyDelayMs = positive('hostBusyDelayMs', options.hostBusyDelayMs ?? 2000);
    this.#secretCacheMs = options.secretCacheMs ?? 60_000;
    this.#metricsLogIntervalMs = options.metricsLogIntervalMs ?? 60_000;
    this.#minClaim = Math.ceil(this.#prefetch / 2);
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
    this.#pollTimer = setInterval(() => {
      this.#checkStalledHosts();
      this.wake();
    }, this.#pollIntervalMs);
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
    const unstarted: Held[] = [];
    for (const host of [...this.#waiting.values()]) unstarted.push(...this.#unqueue(host, 0));
    await this.#handBack(unstarted, null);
    await this.#settled();
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
   * One claim round for tests and tools: claims up to a batch of due tasks (no more than prefetch
   * has room for), tries them all (or hands back what the hosts' queues do not take), writes the
   * results. Returns how many tasks were claimed.
   */
  async runOnce(): Promise<number> {
    const room = this.#prefetch - this.#queued;
    if (room <= 0) return 0;
    const { tasks, leaseEnd } = await this.#claim(Math.min(this.#batchSize, room));
    await Promise.all(this.#dispatch(tasks, leaseEnd).settled);
    await this.#settled();
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

  /** Whether a claim should run now: asked for, and room for half a prefetch (or for anything when idle). */
  #shouldClaim(): boolean {
    if (!this.#running || this.#stopping || !(this.#wanted || this.#backlog)) return false;
    const room = this.#prefetch - this.#queued;
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
      const limit = Math.min(this.#batchSize, this.#prefetch - this.#queued);
      let claimed: Claimed;
      try {
        claimed = await this.#claim(limit);
      } catch (error) {
        this.#backlog = false;
        this.#logger.error({ err: error }, 'claiming notify tasks failed; retrying at the next poll');
        return;
      }
      const { kept } = this.#dispatch(claimed.tasks, claimed.leaseEnd);
      // A full claim says more is due; but when its hosts' queues took none of it (one slow host's
      // backlog), claiming on would only walk that backlog handing it back: wait for room or a poll.
      this.#backlog = claimed.tasks.length === limit && kept > 0;
    }
  }

  async #claim(limit: number): Promise<Claimed> {
    const now = this.#clock.now();
    const leaseEnd = now.getTime() + this.#leaseMs;
    const tasks = await claimDueTasks(this.#db, {
      now,
      leaseUntil: new Date(leaseEnd),
      workerId: this.workerId,
      limit,
    });
    this.metrics.claims++;
    this.metrics.claimedTasks += tasks.length;
    return { tasks, leaseEnd };
  }

  /**
   * Queues claimed tasks by host, starts what the limits allow, and hands back what a host's queue
   * does not take. Returns one promise per task, settled when it is tried or handed back, and how
   * many were kept (started or queued).
   */
  #dispatch(tasks: readonly ClaimedTask[], leaseEnd: number): { settled: Promise<void>[]; kept: number } {
    if (tasks.length === 0) return { settled: [], kept: 0 };
    const now = this.#clock.now().getTime();
    const settled: Promise<void>[] = [];
    const touched = new Set<Host>();
    for (const task of tasks) {
      const host = this.#host(hostOf(task.url));
      settled.push(
        this.#track(
          new Promise<void>((done) => {
            host.queue.push({ task, leaseEnd, queuedAt: now, done });
          }),
        ),
      );
      this.#queued++;
      this.#waiting.set(host.name, host);
      touched.add(host);
    }
    this.#pump();
    const handedBack = this.#trimQueues(touched, now);
    return { settled, kept: tasks.length - handedBack };
  }

  #host(name: string): Host {
    let host = this.#hosts.get(name);
    if (!host) {
      host = { name, sending: 0, queue: [] };
      this.#hosts.set(name, host);
    }
    return host;
  }

  /** Forgets a host with nothing in flight or queued (its try duration is kept in #tryMs). */
  #release(host: Host): void {
    if (host.sending === 0 && host.queue.length === 0) this.#hosts.delete(host.name);
  }

  /**
   * How many tasks a host's queue holds: what its tries start within about hostBusyDelayMs at its
   * measured pace, at least perHostConcurrency (one try's worth), at most prefetch. A host not yet
   * measured gets prefetch; #checkStalledHosts and its first answers correct that quickly.
   */
  #queueLimit(name: string): number {
    const tryMs = this.#tryMs.get(name);
    const floor = Math.min(this.#perHost, this.#prefetch);
    if (tryMs === undefined) return this.#prefetch;
    const paced = Math.floor((this.#perHost * this.#hostBusyDelayMs) / Math.max(1, tryMs));
    return Math.max(floor, Math.min(this.#prefetch, paced));
  }

  /**
   * Cuts each host's queue to its #queueLimit; what no longer fits is handed back, not to be claimed
   * again before hostBusyDelayMs from `now`. Returns how many were handed back.
   */
  #trimQueues(hosts: Iterable<Host>, now: number): number {
    const over: Held[] = [];
    for (const host of hosts) over.push(...this.#unqueue(host, this.#queueLimit(host.name)));
    if (over.length === 0) return 0;
    this.metrics.handedBack += over.length;
    void this.#handBack(over, new Date(now + this.#hostBusyDelayMs));
    return over.length;
  }

  /** Takes a host's queued tasks from position `keep` on out of the queue (keep 0: all of them). */
  #unqueue(host: Host, keep: number): Held[] {
    if (host.queue.length <= keep) return [];
    const removed = host.queue.splice(keep);
    this.#queued -= removed.length;
    if (host.queue.length === 0) this.#waiting.delete(host.name);
    this.#release(host);
    return removed;
  }

  /**
   * Gives held tasks back without trying them, at once (`until` null) or not before `until`, then
   * settles them. Never throws: if the statement fails, their lease brings them back.
   */
  async #handBack(held: readonly Held[], until: Date | null): Promise<void> {
    if (held.length === 0) return;
    try {
      await releaseTasks(
        this.#db,
        this.workerId,
        held.map((h) => ({ id: h.task.id, leaseUntil: new Date(h.leaseEnd) })),
        until,
      );
    } catch (error) {
      this.#logger.warn(
        { err: error, tasks: held.length },
        'handing back claimed notify tasks failed; their lease will expire',
      );
    }
    for (const h of held) h.done();
  }

  /**
   * Starts queued tasks while there are free slots, host by host in turn. A task whose lease no
   * longer covers a try (it waited too long) is handed back unsent instead.
   */
  #pump(): void {
    if (this.#stopping || this.#queued === 0) return;
    const now = this.#clock.now().getTime();
    const mustLastUntil = now + this.#sender.timeoutMs + LEASE_MARGIN_MS;
    const expired: Held[] = [];
    const served: Host[] = [];
    for (const host of this.#waiting.values()) {
      if (this.#sending >= this.#concurrency) break;
      let started = false;
      while (host.sending < this.#perHost && this.#sending < this.#concurrency) {
        const next = host.queue.shift();
        if (!next) break;
        this.#queued--;
        if (next.leaseEnd < mustLastUntil) {
          expired.push(next);
          continue;
        }
        this.#startTry(host, next);
        started = true;
      }
      if (started || host.queue.length === 0) served.push(host);
    }
    // Served hosts go to the back of the line; emptied ones leave it.
    for (const host of served) {
      this.#waiting.delete(host.name);
      if (host.queue.length > 0) this.#waiting.set(host.name, host);
      else this.#release(host);
    }
    if (expired.length > 0) {
      this.metrics.leaseTooShort += expired.length;
      this.#logger.warn(
        { tasks: expired.length },
        'queued notify tasks waited until their lease could not cover a try; handed back unsent',
      );
      void this.#handBack(expired, new Date(now + this.#hostBusyDelayMs));
    }
  }

  /**
   * Called every poll: a host that has not started its oldest queued task within hostBusyDelayMs
   * while all its slots were busy is slow, whatever its last answers said (they may not have come
   * yet): it keeps a short queue and the rest goes back, so it does not hold up the other hosts.
   */
  #checkStalledHosts(): void {
    const now = this.#clock.now().getTime();
    const stalled: Host[] = [];
    for (const host of this.#waiting.values()) {
      const oldest = host.queue[0];
      if (!oldest || host.sending < this.#perHost || now - oldest.queuedAt < this.#hostBusyDelayMs) continue;
      this.#observeTryMs(host.name, Math.max(this.#tryMs.get(host.name) ?? 0, now - oldest.queuedAt), true);
      stalled.push(host);
    }
    this.#trimQueues(stalled, now);
  }

  /** Smooths a host's try duration (or sets it, `replace`), keeping the most recently seen hosts. */
  #observeTryMs(name: string, ms: number, replace = false): void {
    const before = this.#tryMs.get(name);
    this.#tryMs.delete(name);
    this.#tryMs.set(name, before === undefined || replace ? ms : before + 0.2 * (ms - before));
    if (this.#tryMs.size > REMEMBERED_HOSTS) {
      const oldest = this.#tryMs.keys().next();
      if (!oldest.done) this.#tryMs.delete(oldest.value);
    }
  }

  #startTry(host: Host, held: Held): void {
    this.#sending++;
    host.sending++;
    const startedAt = this.#clock.now().getTime();
    this.#try(held.task)
      .catch((error: unknown) => {
        // #try does not throw; if it ever does, the lease brings the task back.
        this.#logger.error({ err: error, taskId: held.task.id }, 'notify try crashed');
      })
      .finally(() => {
        this.#sending--;
        host.sending--;
        this.#observeTryMs(host.name, this.#clock.now().getTime() - startedAt);
        held.done();
        // Slower answers shorten the host's queue: what no longer fits goes back for a while.
        if (!this.#stopping) this.#trimQueues([host], this.#clock.now().getTime());
        this.#release(host);
        this.#pump();
        this.#kick();
      });
  }

  #track(promise: Promise<void>): Promise<void> {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise));
    return promise;
  }

  /** Every held task tried or handed back, and every result written. */
  async #settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    await this.#flushed();
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
      const delay = delayAfterAttempt(task.schedule ?? defaultNotifySchedule(), attemptNo);
      nextAttemptAt = new Date(at.getTime() + delay * 1000);
    }
    this.#complete({
      taskId: task.id,
      attemptNo,
      status,
      nextAttemptAt,
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
