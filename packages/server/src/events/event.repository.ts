import type { Transaction } from 'kysely';
import type { DB, EventType } from '../db/schema.js';
import { defaultNotifySchedule, fillNotifyUrl, maxAttemptsOf } from '../notify/schedule.js';

export interface RecordedEvent {
  eventId: string;
  taskId: string;
}

/**
 * Writes a merchant event and its notify task. Takes a transaction on purpose: the event must commit
 * with the state change that caused it, or not at all.
 */
export async function recordEvent(
  trx: Transaction<DB>,
  input: {
    appId: string;
    type: EventType;
    orderId: string | null;
    refundId?: string | null;
    data: Record<string, unknown>;
    /** The order's own notify URL; the app's is used when null. */
    notifyUrl: string | null;
    channel: { channelId: string | null; channelCode: string | null };
    now: Date;
  },
): Promise<RecordedEvent> {
  const app = await trx
    .selectFrom('apps')
    .select(['notify_url', 'notify_schedule'])
    .where('id', '=', input.appId)
    .executeTakeFirstOrThrow();
  const event = await trx
    .insertInto('events')
    .values({
      app_id: input.appId,
      type: input.type,
      order_id: input.orderId,
      refund_id: input.refundId ?? null,
      payload: JSON.stringify(input.data),
      created_at: input.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const task = await trx
    .insertInto('notify_tasks')
    .values({
      event_id: event.id,
      app_id: input.appId,
      url: fillNotifyUrl(input.notifyUrl ?? app.notify_url, input.channel),
      max_attempts: maxAttemptsOf(app.notify_schedule ?? defaultNotifySchedule()),
      next_attempt_at: input.now,
      created_at: input.now,
      updated_at: input.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { eventId: event.id, taskId: task.id };
}
