import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { WakeupBus } from '../../src/notify/wakeup.js';
import { backends } from '../helpers/backends.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import { dispatcherFor, enqueueEvents, taskRow } from './helpers.js';

describe('in-process wake-ups (embedded mode)', () => {
  it('runs the listeners at once and needs no connection', async () => {
    const bus = new WakeupBus();
    await bus.start();
    let heard = 0;
    const unsubscribe = bus.subscribe(() => heard++);
    bus.wake();
    bus.wake();
    expect(heard).toBe(2);
    unsubscribe();
    bus.wake();
    expect(heard).toBe(2);
    expect(bus.crossInstance).toBe(false);
    expect(bus.stats.sent).toBe(0);
    await bus.stop();
  });
});

describe.runIf(backends().includes('postgres'))('cross-instance wake-ups on postgres', () => {
  const channel = `paycenter_notify_${randomBytes(4).toString('hex')}`;
  const url = () => inject('testDatabaseUrl');
  let api: WakeupBus;
  let worker: WakeupBus;

  beforeAll(async () => {
    api = new WakeupBus({ connectionString: url(), channel, coalesceMs: 50 });
    worker = new WakeupBus({ connectionString: url(), channel, coalesceMs: 50 });
    await Promise.all([api.start(), worker.start()]);
  });
  afterAll(async () => {
    await Promise.all([api.stop(), worker.stop()]);
  });

  it('coalesces a burst of wake-ups into at most two NOTIFYs, heard by the other instance only', async () => {
    expect(api.crossInstance).toBe(true);
    let local = 0;
    let remote = 0;
    const offLocal = api.subscribe(() => local++);
    const offRemote = worker.subscribe(() => remote++);
    for (let i = 0; i < 500; i++) api.wake();
    expect(local).toBe(500);
    await vi.waitFor(() => expect(worker.stats.received).toBe(2), { timeout: 2000, interval: 10 });
    // One at once (the leading edge), one for the rest of the window (the trailing edge).
    expect(api.stats.sent).toBe(2);
    expect(remote).toBe(2);
    // A bus does not hear its own NOTIFYs.
    expect(local).toBe(500);
    expect(api.stats.received).toBe(0);
    offLocal();
    offRemote();
  });

  describe('a dispatcher on another instance', () => {
    let t: TestApp;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestApp('postgres');
      receiver = await Receiver.start();
    });
    afterAll(async () => {
      await receiver.close();
      await t.close();
    });

    it('tries a task committed elsewhere as soon as the NOTIFY arrives, not at its next poll', async () => {
      const app = await t.createApp({ notifyUrl: receiver.url() });
      const d = dispatcherFor(t, { pollIntervalMs: 3_600_000 }, { wakeup: worker });
      d.start();
      try {
        await vi.waitFor(() => expect(d.metrics.claims).toBe(1));
        const [recorded] = await enqueueEvents(t.runtime.database.db, t.clock, app.id, 1);
        // The "API instance" commits and wakes; it runs no dispatcher itself.
        api.wake();
        await vi.waitFor(
          async () =>
            expect((await taskRow(t.runtime.database.db, recorded!.taskId)).status).toBe('succeeded'),
          { timeout: 3000, interval: 5 },
        );
        expect(d.metrics.claims).toBeGreaterThanOrEqual(2);
      } finally {
        await d.close();
      }
    });
  });
});
