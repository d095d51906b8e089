import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { claimDueTasks, releaseTasks } from '../../src/notify/notify.repository.js';
import { NotifyService } from '../../src/notify/notify.service.js';
import { configureDefaultNotifySchedule } from '../../src/notify/schedule.js';
import { WebhookSender, webhookSecretKey } from '../../src/notify/sender.js';
import { VERSION } from '../../src/version.js';
import { backends } from '../helpers/backends.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';
import { Receiver, webhookHeaders } from '../helpers/webhook-receiver.js';
import { dispatcherFor, enqueueEvents, gate, holdAnswers, logRows, taskRow, taskRows } from './helpers.js';

/** Real servers and a real database do the work: wait generously, check often. */
const SETTLED = { timeout: 10_000, interval: 10 };

const SECOND = 1000;

describe.each(backends())('the notify dispatcher on %s', (backend) => {
  let t: TestApp;
  let receiver: Receiver;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    t = await startTestApp(backend);
    receiver = await Receiver.start();
    shop = await t.createApp({ notifyUrl: receiver.url() });
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });
  afterEach(async () => {
    // Each test starts with nothing due: what a test leaves pending is settled here.
    await t.runtime.database.db
      .updateTable('notify_tasks')
      .set({ status: 'failed', locked_until: null })
      .where('status', '=', 'pending')
      .execute();
    receiver.requests.length = 0;
    receiver.respond = () => ({ status: 200, body: 'SUCCESS' });
  });

  const db = () => t.runtime.database.db;

  it('delivers a new task at once, signed per Standard Webhooks, and logs the try', async () => {
    t.clock.set(new Date()); // the reference library checks the timestamp against the real time
    const [recorded] = await enqueueEvents(db(), t.clock, shop.id, 1);
    const dispatcher = dispatcherFor(t);
    try {
      expect(await dispatcher.drain()).toBe(1);
    } finally {
      await dispatcher.close();
    }
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0]!;
    expect(request.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': `paycenter/${VERSION}`,
      'webhook-id': recorded!.eventId,
      'webhook-timestamp': String(Math.floor(t.clock.now().getTime() / 1000)),
      'webhook-signature': expect.stringMatching(/^v1,[A-Za-z0-9+/]{43}=$/),
    });
    const verified = new Webhook(shop.webhookSecret).verify(request.body, webhookHeaders(request));
    expect(verified).toEqual({
      id: recorded!.eventId,
      type: 'order.paid',
      createdAt: t.clock.now().toISOString(),
      data: { n: 0, amount: 1234, status: 'paid', note: '茶 & "quotes"' },
    });
    // Another secret does not verify it.
    expect(() =>
      new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(
        request.body,
        webhookHeaders(request),
      ),
    ).toThrow();

    const task = await taskRow(db(), recorded!.taskId);
    expect(task).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      max_attempts: 9,
      delivered_at: t.clock.now(),
      last_error: null,
      locked_until: null,
    });
    const logs = await logRows(db(), recorded!.taskId);
    expect(logs).toEqual([
      expect.objectContaining({
        attempt_no: 1,
        http_status: 200,
        response_excerpt: 'SUCCESS',
        error: null,
        duration_ms: expect.any(Number),
      }),
    ]);
    expect(dispatcher.metrics.snapshot()).toMatchObject({
      tries: { delivered: 1, rejected: 0, error: 0, refused: 0 },
      tasks: { succeeded: 1, failed: 0 },
    });
  });

  it('follows the schedule with the clock: nothing is tried early, each try is logged, then failed', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/busy'), notifySchedule: [15, 30, 60] });
    receiver.respond = () => ({ status: 503, body: 'busy' });
    const start = t.clock.now().getTime();
    const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
    const dispatcher = dispatcherFor(t);
    try {
      const expectNext = async (afterMs: number) => {
        const task = await taskRow(db(), recorded!.taskId);
        expect(task.status).toBe('pending');
        expect(task.next_attempt_at.getTime() - t.clock.now().getTime()).toBe(afterMs);
      };
      expect(await dispatcher.drain()).toBe(1);
      await expectNext(15 * SECOND);
      t.clock.advance(15 * SECOND - 1);
      expect(await dispatcher.drain()).toBe(0);
      t.clock.advance(1);
      expect(await dispatcher.drain()).toBe(1);
      await expectNext(30 * SECOND);
      t.clock.advance(30 * SECOND);
      expect(await dispatcher.drain()).toBe(1);
      await expectNext(60 * SECOND);
      t.clock.advance(60 * SECOND);
      expect(await dispatcher.drain()).toBe(1);
      t.clock.advance(3600 * SECOND);
      expect(await dispatcher.drain()).toBe(0);
    } finally {
      await dispatcher.close();
    }
    const task = await taskRow(db(), recorded!.taskId);
    expect(task).toMatchObject({ status: 'failed', attempts: 4, max_attempts: 4, last_error: 'HTTP 503' });
    const logs = await logRows(db(), recorded!.taskId);
    expect(logs.map((l) => [l.attempt_no, l.http_status, l.error, l.created_at.getTime() - start])).toEqual([
      [1, 503, 'HTTP 503', 0],
      [2, 503, 'HTTP 503', 15 * SECOND],
      [3, 503, 'HTTP 503', 45 * SECOND],
      [4, 503, 'HTTP 503', 105 * SECOND],
    ]);
    expect(receiver.requests).toHaveLength(4);
    expect(new Set(receiver.requests.map((r) => r.id))).toEqual(new Set([recorded!.eventId]));
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
  });

  it('uses the configured default schedule for apps without their own', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/default') });
    receiver.respond = () => ({ status: 500 });
    // What the runtime does with PAYCENTER_NOTIFY_SCHEDULE: the events recorded and the retries follow it.
    const custom = dispatcherFor(t);
    try {
      configureDefaultNotifySchedule([2, 4]);
      const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
      expect((await taskRow(db(), recorded!.taskId)).max_attempts).toBe(3);
      await custom.drain();
      expect(
        (await taskRow(db(), recorded!.taskId)).next_attempt_at.getTime() - t.clock.now().getTime(),
      ).toBe(2000);
      t.clock.advance(2000);
      await custom.drain();
      expect(
        (await taskRow(db(), recorded!.taskId)).next_attempt_at.getTime() - t.clock.now().getTime(),
      ).toBe(4000);
    } finally {
      configureDefaultNotifySchedule(null);
      await custom.close();
    }
  });

  it('delivers at try 4 when the receiver is down for the first three tries, with 4 logs', async () => {
    receiver.respond = (_request, index) =>
      [
        { destroy: true } as const,
        { status: 500, body: 'Internal Server Error' },
        { status: 200, body: '{"code":"FAIL","message":"database busy"}' },
      ][index] ?? { status: 200, body: '{"code":0,"message":"ok"}' };
    const [recorded] = await enqueueEvents(db(), t.clock, shop.id, 1);
    const dispatcher = dispatcherFor(t);
    try {
      for (const wait of [0, 15, 15, 30]) {
        t.clock.advance(wait * SECOND);
        expect(await dispatcher.drain()).toBe(1);
      }
      t.clock.advance(3600 * SECOND);
      expect(await dispatcher.drain()).toBe(0);
    } finally {
      await dispatcher.close();
    }
    const task = await taskRow(db(), recorded!.taskId);
    expect(task).toMatchObject({
      status: 'succeeded',
      attempts: 4,
      last_error: null,
      delivered_at: expect.any(Date),
    });
    const logs = await logRows(db(), recorded!.taskId);
    expect(logs).toHaveLength(4);
    expect(logs.map((l) => [l.attempt_no, l.http_status, l.response_excerpt])).toEqual([
      [1, null, null],
      [2, 500, 'Internal Server Error'],
      [3, 200, '{"code":"FAIL","message":"database busy"}'],
      [4, 200, '{"code":0,"message":"ok"}'],
    ]);
    expect(logs[0]!.error).toMatch(/connection closed|socket|reset/i);
    expect(logs[1]!.error).toBe('HTTP 500');
    expect(logs[2]!.error).toMatch(/code is "FAIL"/);
    expect(logs[3]!.error).toBeNull();
    expect(receiver.requests.map((r) => r.id)).toEqual(Array(4).fill(recorded!.eventId));
  });

  it('fails a task after its schedule, and a manual retry delivers it with the count continuing', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/flaky'), notifySchedule: [5] });
    receiver.respond = () => ({ status: 502, body: 'bad gateway' });
    const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
    const dispatcher = dispatcherFor(t);
    const notify = new NotifyService(db(), t.clock, dispatcher);
    try {
      await dispatcher.drain();
      t.clock.advance(5 * SECOND);
      await dispatcher.drain();
      expect(await taskRow(db(), recorded!.taskId)).toMatchObject({
        status: 'failed',
        attempts: 2,
        max_attempts: 2,
      });

      receiver.respond = () => ({ status: 204 });
      const principal = { appId: app.id, keyId: '0' };
      const retried = await notify.retry(principal, recorded!.taskId);
      expect(retried).toMatchObject({
        status: 'pending',
        attempts: 2,
        maxAttempts: 3,
        nextAttemptAt: t.clock.now().toISOString(),
        lastError: 'HTTP 502',
      });
      expect(await dispatcher.drain()).toBe(1);
      const detail = await notify.get(principal, recorded!.taskId);
      expect(detail).toMatchObject({ status: 'succeeded', attempts: 3, maxAttempts: 3, nextAttemptAt: null });
      expect(detail.logs.map((l) => [l.attemptNo, l.httpStatus])).toEqual([
        [1, 502],
        [2, 502],
        [3, 204],
      ]);
    } finally {
      await dispatcher.close();
    }
  });

  it('refuses a notify URL on a private address unless allowed, with a clear error', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/private') });
    const named = await t.createApp({ notifyUrl: `http://localhost:${receiver.port}/private` });
    const [literal] = await enqueueEvents(db(), t.clock, app.id, 1);
    const [byName] = await enqueueEvents(db(), t.clock, named.id, 1);
    const strict = dispatcherFor(t, { allowPrivate: false });
    try {
      expect(await strict.drain()).toBeGreaterThanOrEqual(2);
    } finally {
      await strict.close();
    }
    expect(receiver.requests).toHaveLength(0);
    for (const recorded of [literal!, byName!]) {
      const task = await taskRow(db(), recorded.taskId);
      expect(task).toMatchObject({ status: 'pending', attempts: 1 });
      expect(task.last_error).toMatch(/^refused to connect to (127\.0\.0\.1|localhost).*a loopback address/);
      expect(task.last_error).toMatch(/PAYCENTER_NOTIFY_ALLOW_PRIVATE=true/);
      const [log] = await logRows(db(), recorded.taskId);
      expect(log).toMatchObject({ attempt_no: 1, http_status: null, error: task.last_error });
    }
    expect(strict.metrics.tries.refused).toBeGreaterThanOrEqual(2);
  });

  it('logs a try it cannot sign as failed, sends nothing, and writes the broken secret nowhere', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/unsigned'), notifySchedule: [15] });
    const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
    // Decodes to the 5 bytes "short": too short for an HMAC key.
    const broken = 'whsec_c2hvcnQ=';
    let asked = 0;
    const logged: unknown[] = [];
    const capture = (obj: object, msg: string) => logged.push({ obj, msg });
    const dispatcher = dispatcherFor(
      t,
      {},
      {
        webhookSecret: async () => {
          asked++;
          return broken;
        },
        logger: { debug: capture, info: capture, warn: capture, error: capture },
      },
    );
    try {
      expect(await dispatcher.drain()).toBe(1);
      t.clock.advance(15 * SECOND);
      expect(await dispatcher.drain()).toBe(1);
    } finally {
      await dispatcher.close();
    }
    expect(receiver.requests).toHaveLength(0);
    const reason = 'cannot sign the webhook: the webhook secret is not a whsec_ secret';
    expect(await taskRow(db(), recorded!.taskId)).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_error: reason,
    });
    expect(
      (await logRows(db(), recorded!.taskId)).map((l) => [l.attempt_no, l.http_status, l.error]),
    ).toEqual([
      [1, null, reason],
      [2, null, reason],
    ]);
    // A secret that could not be used is not cached: each try asks again.
    expect(asked).toBe(2);
    expect(dispatcher.metrics.tries.error).toBe(2);
    expect(logged.length).toBeGreaterThan(0);
    expect(JSON.stringify(logged)).not.toContain('c2hvcnQ');
  });

  it('shares the work between two dispatchers: every task is tried exactly once', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/shared') });
    const recorded = await enqueueEvents(db(), t.clock, app.id, 300);
    const a = dispatcherFor(t, { batchSize: 20, concurrency: 16 });
    const b = dispatcherFor(t, { batchSize: 20, concurrency: 16 });
    try {
      const [fromA, fromB] = await Promise.all([a.drain(), b.drain()]);
      expect(fromA + fromB).toBe(300);
      if (backend === 'postgres') {
        expect(fromA).toBeGreaterThan(0);
        expect(fromB).toBeGreaterThan(0);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const counts = receiver.countsById();
    expect(counts.size).toBe(300);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const logs = await db()
      .selectFrom('notify_logs')
      .select('task_id')
      .where(
        'task_id',
        'in',
        recorded.map((r) => r.taskId),
      )
      .execute();
    expect(logs).toHaveLength(300);
    const statuses = await taskRows(db(), recorded);
    expect(statuses.every((s) => s.status === 'succeeded' && s.attempts === 1)).toBe(true);
  });

  it('a copy held past its lease cannot hand back the claim made since, even by the same worker', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/stale') });
    const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
    const claim = async () => {
      const leaseUntil = new Date(t.clock.now().getTime() + 60 * SECOND);
      const [task] = await claimDueTasks(db(), { now: t.clock.now(), leaseUntil, workerId: 'w1', limit: 10 });
      expect(task?.id).toBe(recorded!.taskId);
      return { id: task!.id, leaseUntil };
    };
    const stale = await claim();
    t.clock.advance(60 * SECOND);
    const fresh = await claim();
    expect(await releaseTasks(db(), 'w1', [stale], null)).toBe(0);
    expect(await taskRow(db(), recorded!.taskId)).toMatchObject({ locked_by: 'w1' });
    expect(await releaseTasks(db(), 'w2', [fresh], null)).toBe(0);
    expect(await releaseTasks(db(), 'w1', [fresh], null)).toBe(1);
    expect(await taskRow(db(), recorded!.taskId)).toMatchObject({
      locked_by: null,
      status: 'pending',
      attempts: 0,
    });
  });

  it("tries a dead dispatcher's task again once its lease ends, with the same webhook-id and body", async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/lease') });
    const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
    // The dead dispatcher claimed the task, sent it, and died before writing anything back.
    const [claimed] = await claimDueTasks(db(), {
      now: t.clock.now(),
      leaseUntil: new Date(t.clock.now().getTime() + 60 * SECOND),
      workerId: 'dead',
      limit: 10,
    });
    expect(claimed?.id).toBe(recorded!.taskId);
    const sender = new WebhookSender({ allowPrivate: true });
    const { webhookBody } = await import('../../src/notify/sender.js');
    await sender.send({
      url: claimed!.url,
      webhookId: claimed!.eventId,
      body: webhookBody({
        id: claimed!.eventId,
        type: claimed!.eventType,
        createdAt: claimed!.eventCreatedAt,
        data: claimed!.payload,
      }),
      secretKey: webhookSecretKey(await t.runtime.services.apps.webhookSecret(app.id)),
      timestamp: t.clock.now(),
    });
    await sender.close();

    const survivor = dispatcherFor(t);
    try {
      t.clock.advance(60 * SECOND - 1);
      expect(await survivor.drain()).toBe(0);
      t.clock.advance(1);
      expect(await survivor.drain()).toBe(1);
    } finally {
      await survivor.close();
    }
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[1]!.id).toBe(receiver.requests[0]!.id);
    expect(receiver.requests[1]!.body).toBe(receiver.requests[0]!.body);
    expect(await taskRow(db(), recorded!.taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
    // A late result from the dead dispatcher cannot overwrite the task any more.
    const { completeTries } = await import('../../src/notify/notify.repository.js');
    const updated = await completeTries(db(), 'dead', [
      {
        taskId: recorded!.taskId,
        attemptNo: 1,
        status: 'failed',
        nextAttemptAt: null,
        httpStatus: 500,
        excerpt: null,
        error: 'late',
        durationMs: 1,
        at: t.clock.now(),
      },
    ]);
    expect(updated.size).toBe(0);
    expect(await taskRow(db(), recorded!.taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  /** Answers after `held` opens, counting the tries in flight at once (per receiver and over all). */
  function countInFlight(receivers: Receiver[], held?: { wait: Promise<void> }) {
    const peak = { total: 0, perReceiver: new Map<Receiver, number>() };
    let total = 0;
    for (const r of receivers) {
      let mine = 0;
      r.respond = async () => {
        total++;
        mine++;
        peak.total = Math.max(peak.total, total);
        peak.perReceiver.set(r, Math.max(peak.perReceiver.get(r) ?? 0, mine));
        await held?.wait;
        // Let the other tries of this round arrive before answering.
        await new Promise((resolve) => setImmediate(resolve));
        total--;
        mine--;
        return { status: 200, body: 'SUCCESS' };
      };
    }
    return peak;
  }

  it('delivers a burst to one host beyond its limit from its local queue: nothing handed back, nothing claimed twice', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/burst') });
    const peak = countInFlight([receiver]);
    const recorded = await enqueueEvents(db(), t.clock, app.id, 60);
    const dispatcher = dispatcherFor(t, { perHostConcurrency: 4, batchSize: 20, pollIntervalMs: 3_600_000 });
    dispatcher.start();
    try {
      await vi.waitFor(
        async () => {
          const rows = await taskRows(db(), recorded);
          expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
        },
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await dispatcher.close();
    }
    const metrics = dispatcher.metrics.snapshot();
    // Each task claimed once, in batches of at least half the prefetch (20), none given back.
    expect(metrics.claimedTasks).toBe(60);
    expect(metrics.handedBack).toBe(0);
    expect(metrics.leaseTooShort).toBe(0);
    expect(metrics.claims).toBeLessThanOrEqual(60 / 10 + 1);
    expect(metrics.tries.delivered).toBe(60);
    expect(peak.perReceiver.get(receiver)).toBeLessThanOrEqual(4);
    expect(receiver.countsById().size).toBe(60);
    expect([...receiver.countsById().values()].every((n) => n === 1)).toBe(true);
  });

  it('keeps the global limit across hosts, starting queued tasks as slots free up', async () => {
    const others = [await Receiver.start(), await Receiver.start()];
    onTestFinished(() => Promise.all(others.map((r) => r.close())).then(() => undefined));
    const receivers = [receiver, ...others];
    const apps = await Promise.all(receivers.map((r) => t.createApp({ notifyUrl: r.url('/global') })));
    const held = gate();
    const peak = countInFlight(receivers, held);
    for (const app of apps) await enqueueEvents(db(), t.clock, app.id, 4);
    const dispatcher = dispatcherFor(t, { concurrency: 3, perHostConcurrency: 2, batchSize: 20 });
    try {
      const round = dispatcher.runOnce();
      await vi.waitFor(() => expect(receivers.reduce((n, r) => n + r.requests.length, 0)).toBe(3), SETTLED);
      held.open();
      expect(await round).toBe(12);
    } finally {
      await dispatcher.close();
    }
    expect(peak.total).toBe(3);
    expect(Math.max(...peak.perReceiver.values())).toBeLessThanOrEqual(2);
    expect(receivers.map((r) => r.requests.length)).toEqual([4, 4, 4]);
    expect(dispatcher.metrics.snapshot()).toMatchObject({ claims: 1, handedBack: 0 });
  });

  it('keeps a short queue for a host that answers slowly and hands the rest back, while other hosts go on', async () => {
    const slow = await t.createApp({ notifyUrl: receiver.url('/slow') });
    const fast = await Receiver.start();
    onTestFinished(() => fast.close());
    const other = await t.createApp({ notifyUrl: `http://localhost:${fast.port}/fast` });
    const held = holdAnswers(receiver);
    const slowTasks = await enqueueEvents(db(), t.clock, slow.id, 10);
    const fastTasks = await enqueueEvents(db(), t.clock, other.id, 3);
    const dispatcher = dispatcherFor(t, { perHostConcurrency: 2, concurrency: 20, batchSize: 20 });
    try {
      const round = dispatcher.runOnce();
      await vi.waitFor(() => expect(fast.requests).toHaveLength(3), SETTLED);
      expect(receiver.requests).toHaveLength(2);
      // Its first two tries take 10 s: at that pace a queue of 2 is 10 s of waiting, so the 8
      // queued behind them (an unmeasured host gets the whole prefetch) are cut to 2.
      t.clock.advance(10 * SECOND);
      held.open();
      expect(await round).toBe(13);
      expect(receiver.requests).toHaveLength(4);
      expect(dispatcher.metrics.handedBack).toBe(6);
      // Handed back for hostBusyDelayMs (2 s), unsent and untried.
      expect(await dispatcher.drain()).toBe(0);
      const waiting = (await taskRows(db(), slowTasks))
        .filter((r) => r.status === 'pending')
        .map(({ status, attempts, locked_by }) => ({ status, attempts, locked_by }));
      expect(waiting).toEqual(Array(6).fill({ status: 'pending', attempts: 0, locked_by: null }));
      for (let round = 0; round < 6 && receiver.requests.length < 10; round++) {
        t.clock.advance(2 * SECOND);
        await dispatcher.drain();
      }
      expect(receiver.requests).toHaveLength(10);
    } finally {
      await dispatcher.close();
    }
    const rows = await taskRows(db(), [...slowTasks, ...fastTasks]);
    expect(rows.every((r) => r.status === 'succeeded' && r.attempts === 1)).toBe(true);
    expect(receiver.countsById().size).toBe(10);
  });

  it("does not walk a slow host's whole backlog handing it back: claiming stops when none of a claim was kept", async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/backlog') });
    await enqueueEvents(db(), t.clock, app.id, 200);
    const dispatcher = dispatcherFor(t, {
      perHostConcurrency: 2,
      concurrency: 20,
      batchSize: 20,
      pollIntervalMs: 60 * SECOND,
    });
    // The host's first two tries take 10 s (on the clock): it is slow, a queue of 2 behind 2 tries.
    const first = holdAnswers(receiver);
    const round = dispatcher.runOnce();
    await vi.waitFor(() => expect(receiver.requests).toHaveLength(2), SETTLED);
    t.clock.advance(10 * SECOND);
    first.open();
    await round;

    const held = holdAnswers(receiver);
    const before = dispatcher.metrics.snapshot();
    dispatcher.start();
    try {
      await vi.waitFor(
        () => expect(dispatcher.metrics.handedBack).toBeGreaterThan(before.handedBack),
        SETTLED,
      );
      // Give a runaway loop the time to show itself (it would claim and hand back the ~180 tasks
      // still due, 20 at a time, within milliseconds).
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The first claim keeps what the host's queue takes; the next keeps nothing, and claiming stops.
      expect(dispatcher.metrics.claims - before.claims).toBeLessThanOrEqual(2);
    } finally {
      held.open();
      await dispatcher.close();
    }
  });

  it('hands back the queue of a host whose tries have not finished for hostBusyDelayMs, at the next poll', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/stalled') });
    const held = holdAnswers(receiver);
    await enqueueEvents(db(), t.clock, app.id, 10);
    const dispatcher = dispatcherFor(t, { perHostConcurrency: 2, batchSize: 20, pollIntervalMs: 5 });
    dispatcher.start();
    try {
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(2), SETTLED);
      expect(dispatcher.metrics.handedBack).toBe(0);
      // Nothing answered yet, but the oldest queued task has waited 2 s (on the clock) for a slot.
      t.clock.advance(2 * SECOND);
      await vi.waitFor(() => expect(dispatcher.metrics.handedBack).toBe(6), SETTLED);
      held.open();
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(4), SETTLED);
    } finally {
      await dispatcher.close();
    }
    expect(dispatcher.metrics.leaseTooShort).toBe(0);
    expect(receiver.countsById().size).toBe(4);
  });

  it('does not send a queued task whose lease no longer covers a try: it is handed back unsent', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/late') });
    const held = holdAnswers(receiver);
    const [first, second] = await enqueueEvents(db(), t.clock, app.id, 2);
    // Lease 60 s, timeout 10 s: a try may start until 15 s before the lease ends.
    const dispatcher = dispatcherFor(t, {
      perHostConcurrency: 1,
      leaseMs: 60 * SECOND,
      timeoutMs: 10 * SECOND,
    });
    try {
      const round = dispatcher.runOnce();
      await vi.waitFor(() => expect(receiver.requests).toHaveLength(1), SETTLED);
      t.clock.advance(45 * SECOND + 1);
      held.open();
      expect(await round).toBe(2);
      expect(receiver.requests.map((r) => r.id)).toEqual([first!.eventId]);
      expect(dispatcher.metrics.snapshot()).toMatchObject({ leaseTooShort: 1, tries: { delivered: 1 } });
      expect(await taskRow(db(), second!.taskId)).toMatchObject({
        status: 'pending',
        attempts: 0,
        locked_by: null,
      });
      expect(await logRows(db(), second!.taskId)).toEqual([]);
      // It comes back after hostBusyDelayMs with a fresh lease.
      expect(await dispatcher.drain()).toBe(0);
      t.clock.advance(2 * SECOND);
      expect(await dispatcher.drain()).toBe(1);
    } finally {
      await dispatcher.close();
    }
    expect(receiver.requests.map((r) => r.id)).toEqual([first!.eventId, second!.eventId]);
    expect(await taskRow(db(), second!.taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('stops gracefully: no new claims, unstarted tasks handed back, tries in flight finish and are written', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/stop') });
    const held = holdAnswers(receiver);
    const recorded = await enqueueEvents(db(), t.clock, app.id, 4);
    const dispatcher = dispatcherFor(t, { perHostConcurrency: 2, pollIntervalMs: 60_000 });
    dispatcher.start();
    await vi.waitFor(() => expect(receiver.requests).toHaveLength(2), SETTLED);
    const stopping = dispatcher.stop();
    const inFlight = new Set(receiver.requests.map((r) => r.id));
    // New work committed while stopping is not claimed.
    const [late] = await enqueueEvents(db(), t.clock, app.id, 1);
    dispatcher.wake();
    held.open();
    await stopping;
    expect(dispatcher.running).toBe(false);
    const rows = await Promise.all([...recorded, late!].map((r) => taskRow(db(), r.taskId)));
    const sent = rows.filter((row) => inFlight.has(row.event_id));
    const unsent = rows.filter((row) => !inFlight.has(row.event_id));
    expect(sent.map((r) => [r.status, r.attempts])).toEqual([
      ['succeeded', 1],
      ['succeeded', 1],
    ]);
    expect(unsent.map((r) => [r.status, r.attempts, r.locked_until])).toEqual(
      Array(3).fill(['pending', 0, null]),
    );
    expect(receiver.requests).toHaveLength(2);

    // Another dispatcher picks the rest up at once: nothing waits for a lease.
    const next = dispatcherFor(t);
    try {
      expect(await next.drain()).toBe(3);
    } finally {
      await next.close();
      await dispatcher.close();
    }
  });

  it('tries a task within milliseconds of a wake-up, without waiting for the poll', async () => {
    const app = await t.createApp({ notifyUrl: receiver.url('/wake') });
    const dispatcher = dispatcherFor(t, { pollIntervalMs: 3_600_000 });
    dispatcher.start();
    try {
      await vi.waitFor(() => expect(dispatcher.metrics.claims).toBeGreaterThan(0), SETTLED);
      const [recorded] = await enqueueEvents(db(), t.clock, app.id, 1);
      dispatcher.wake();
      await vi.waitFor(async () => expect((await taskRow(db(), recorded!.taskId)).status).toBe('succeeded'), {
        timeout: 2000,
        interval: 5,
      });
    } finally {
      await dispatcher.close();
    }
  });
});
