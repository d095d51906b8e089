import { sql, type Transaction } from 'kysely';
import type { DB, EventType } from '../db/schema.js';
import { defaultNotifySchedule, maxAttemptsOf } from '../notify/schedule.js';

export interface RecordedEvent {
  eventId: string;
  taskId: string;
}

/**
 * Writes a merchant event and its notify task. Takes a transaction on purpose: the event must commit
 * with the state change that caused it, or not at all.
 *
 * One statement reads the app's notify URL and schedule and writes both rows: every payment, close
 * and refund runs it inside its locking transaction, so each round trip saved there is a shorter
 * hold on the order's row lock. The URL's `{channelId}` and `{channelCode}` are filled with the
 * values URL-encoded here (absent ones become empty); SQL `replace` substitutes them literally.
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
  const { appId, now } = input;
  const result = await sql<RecordedEvent>`
    WITH app AS (
      SELECT notify_url, notify_schedule FROM apps WHERE id = ${appId}
    ), event AS (
      INSERT INTO events (app_id, type, order_id, refund_id, payload, created_at)
      SELECT ${appId}, ${input.type}, ${input.orderId}, ${input.refundId ?? null},
             ${JSON.stringify(input.data)}::jsonb, ${now}
        FROM app
      RETURNING id
    )
    INSERT INTO notify_tasks (event_id, app_id, url, max_attempts, next_attempt_at, created_at, updated_at)
    SELECT event.id, ${appId},
           replace(replace(coalesce(${input.notifyUrl}::text, app.notify_url),
                   '{channelId}', ${encodeURIComponent(input.channel.channelId ?? '')}::text),
                   '{channelCode}', ${encodeURIComponent(input.channel.channelCode ?? '')}::text),
           coalesce(cardinality(app.notify_schedule) + 1, ${maxAttemptsOf(defaultNotifySchedule())}::int),
           ${now}, ${now}, ${now}
      FROM event, app
    RETURNING event_id AS "eventId", id AS "taskId"`.execute(trx);
  const recorded = result.rows[0];
  if (!recorded) throw new Error(`app ${appId} vanished while recording its ${input.type} event`);
  return recorded;
}
