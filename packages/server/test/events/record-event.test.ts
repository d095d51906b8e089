import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvent } from '../../src/events/event.repository.js';
import { DEFAULT_NOTIFY_SCHEDULE } from '../../src/notify/schedule.js';
import { backends } from '../helpers/backends.js';
import { startTestApp, type TestApp } from '../helpers/harness.js';

describe.each(backends())('recording an event with its webhook task on %s', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(() => t?.close());

  const record = (input: {
    appId: string;
    notifyUrl: string | null;
    channel?: { channelId: string | null; channelCode: string | null };
  }) =>
    t.runtime.database.db.transaction().execute((trx) =>
      recordEvent(trx, {
        appId: input.appId,
        type: 'order.closed',
        orderId: null,
        data: { note: 'événement', amount: 1 },
        notifyUrl: input.notifyUrl,
        channel: input.channel ?? { channelId: null, channelCode: null },
        now: t.clock.now(),
      }),
    );
  const taskOf = (id: string) =>
    t.runtime.database.db
      .selectFrom('notify_tasks as t')
      .innerJoin('events as e', 'e.id', 't.event_id')
      .select([
        't.url',
        't.max_attempts',
        't.status',
        't.attempts',
        't.next_attempt_at',
        'e.payload',
        'e.app_id',
      ])
      .where('t.id', '=', id)
      .executeTakeFirstOrThrow();

  it("fills the app's URL template, encoding the values, and sizes the task by the app's schedule", async () => {
    const app = await t.createApp({
      notifyUrl: 'https://shop.example/hooks/{channelId}/{channelCode}?again={channelCode}',
      notifySchedule: [1, 2],
    });
    const { eventId, taskId } = await record({
      appId: app.id,
      notifyUrl: null,
      channel: { channelId: '42', channelCode: 'wx native/&?' },
    });
    const task = await taskOf(taskId);
    expect(task).toMatchObject({
      url: 'https://shop.example/hooks/42/wx%20native%2F%26%3F?again=wx%20native%2F%26%3F',
      max_attempts: 3,
      status: 'pending',
      attempts: 0,
      app_id: app.id,
      payload: { note: 'événement', amount: 1 },
    });
    expect(task.next_attempt_at.toISOString()).toBe(t.clock.now().toISOString());
    expect(typeof eventId).toBe('string');
  });

  it("prefers the order's URL, fills absent values with nothing, and uses the default schedule", async () => {
    const app = await t.createApp({ notifyUrl: 'https://shop.example/app' });
    const { taskId } = await record({
      appId: app.id,
      notifyUrl: 'https://shop.example/order/{channelCode}$&',
    });
    expect(await taskOf(taskId)).toMatchObject({
      url: 'https://shop.example/order/$&',
      max_attempts: DEFAULT_NOTIFY_SCHEDULE.length + 1,
    });
  });

  it('writes nothing for an app that does not exist, and says so', async () => {
    const before = [await t.count('events'), await t.count('notify_tasks')];
    await expect(record({ appId: '987654', notifyUrl: 'https://shop.example/x' })).rejects.toThrow(
      'app 987654 vanished',
    );
    expect([await t.count('events'), await t.count('notify_tasks')]).toEqual(before);
  });
});
