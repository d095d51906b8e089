import { sql } from 'kysely';
import type { EventType, Executor, NotifyTaskStatus } from '../db/schema.js';

/** A task a dispatcher holds the lease on, with what it needs to send it. */
export interface ClaimedTask {
  id: string;
  eventId: string;
  appId: string;
  url: string;
  /** Tries made before this one. */
  attempts: number;
  maxAttempts: number;
  createdAt: Date;
  eventType: EventType;
  payload: Record<string, unknown>;
  eventCreatedAt: Date;
  /** The app's own schedule; null means the default. */
  schedule: number[] | null;
}

/**
 * Claims up to `limit` due tasks for `workerId` until `leaseUntil`, in one statement: due and not
 * leased (or leased by someone whose lease ran out), oldest first, skipping rows another claim is
 * locking right now. The lease, not the row lock, is what keeps other dispatchers away while the
 * webhook is sent, so no transaction stays open across the HTTP call.
 */
export async function claimDueTasks(
  db: Executor,
  input: { now: Date; leaseUntil: Date; workerId: string; limit: number },
): Promise<ClaimedTask[]> {
  const result = await sql<ClaimedTask>`
    WITH due AS (
      SELECT id FROM notify_tasks
       WHERE status = 'pending' AND next_attempt_at <= ${input.now}
         AND (locked_until IS NULL OR locked_until <= ${input.now})
       ORDER BY next_attempt_at
       LIMIT ${input.limit}
       FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE notify_tasks t SET locked_until = ${input.leaseUntil}, locked_by = ${input.workerId}
        FROM due WHERE t.id = due.id
      RETURNING t.id, t.event_id, t.app_id, t.url, t.attempts, t.max_attempts, t.created_at
    )
    SELECT c.id, c.event_id AS "eventId", c.app_id AS "appId", c.url, c.attempts,
           c.max_attempts AS "maxAttempts", c.created_at AS "createdAt", e.type AS "eventType",
           e.payload, e.created_at AS "eventCreatedAt", a.notify_schedule AS schedule
      FROM claimed c
      JOIN events e ON e.id = c.event_id
      JOIN apps a ON a.id = c.app_id`.execute(db);
  return result.rows;
}

/** The result of one try, to be written back: the task's new state and the try's log row. */
export interface Completion {
  taskId: string;
  /** 1 for the first try. */
  attemptNo: number;
  status: NotifyTaskStatus;
  /** When the next try is due (status pending); null keeps the column as it is. */
  nextAttemptAt: Date | null;
  httpStatus: number | null;
  excerpt: string | null;
  /** Why the try did not deliver, null when it did: the log row's error and the task's last_error. */
  error: string | null;
  durationMs: number;
  at: Date;
}

/**
 * Writes many tries back in one statement: each task's new state (only while `workerId` still holds
 * its lease and nobody completed this try already) and one notify_logs row per try, which is written
 * even when the lease was lost, since the try did happen. Returns the ids of the tasks updated.
 */
export async function completeTries(
  db: Executor,
  workerId: string,
  completions: readonly Completion[],
): Promise<Set<string>> {
  if (completions.length === 0) return new Set();
  const column = <T>(pick: (c: Completion) => T) => completions.map(pick);
  const result = await sql<{ id: string }>`
    WITH v AS (
      SELECT * FROM unnest(
        ${column((c) => c.taskId)}::bigint[],
        ${column((c) => c.attemptNo)}::int[],
        ${column((c) => c.status)}::text[],
        ${column((c) => c.nextAttemptAt?.toISOString() ?? null)}::timestamptz[],
        ${column((c) => c.httpStatus)}::int[],
        ${column((c) => c.excerpt)}::text[],
        ${column((c) => c.error)}::text[],
        ${column((c) => c.durationMs)}::int[],
        ${column((c) => c.at.toISOString())}::timestamptz[]
      ) AS v(id, attempt_no, status, next_at, http_status, excerpt, error, duration_ms, at)
    ), done AS (
      UPDATE notify_tasks t SET
        status = v.status,
        attempts = v.attempt_no,
        next_attempt_at = COALESCE(v.next_at, t.next_attempt_at),
        last_error = v.error,
        delivered_at = CASE WHEN v.status = 'succeeded' THEN v.at ELSE t.delivered_at END,
        locked_until = NULL,
        locked_by = NULL,
        updated_at = v.at
      FROM v
      WHERE t.id = v.id AND t.locked_by = ${workerId} AND t.attempts = v.attempt_no - 1
      RETURNING t.id
    ), logs AS (
      INSERT INTO notify_logs (task_id, attempt_no, http_status, response_excerpt, error, duration_ms, created_at)
      SELECT id, attempt_no, http_status, excerpt, error, duration_ms, at FROM v
    )
    SELECT id FROM done`.execute(db);
  return new Set(result.rows.map((row) => row.id));
}

/**
 * Gives claimed tasks back without trying them: at once (`until` null: a dispatcher stopping) or
 * not before `until` (their destination is busy). Their try count does not change. Each is named
 * with the lease its claim set: a copy held past its lease (and claimed again since, even by this
 * worker) cannot undo the newer claim.
 */
export async function releaseTasks(
  db: Executor,
  workerId: string,
  claims: readonly { id: string; leaseUntil: Date }[],
  until: Date | null,
): Promise<number> {
  if (claims.length === 0) return 0;
  const result = await sql`
    UPDATE notify_tasks t SET locked_until = ${until}, locked_by = NULL
      FROM unnest(${claims.map((c) => c.id)}::bigint[], ${claims.map((c) => c.leaseUntil.toISOString())}::timestamptz[])
        AS c(id, lease_until)
     WHERE t.id = c.id AND t.locked_until = c.lease_until AND t.locked_by = ${workerId}
       AND t.status = 'pending'`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

// ---- reads and manual retries, for the API ----

export interface TaskRow {
  id: string;
  app_id: string;
  event_id: string;
  event_type: EventType;
  order_id: string | null;
  refund_id: string | null;
  url: string;
  status: NotifyTaskStatus;
  attempts: number;
  max_attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface LogRow {
  id: string;
  task_id: string;
  attempt_no: number;
  http_status: number | null;
  response_excerpt: string | null;
  error: string | null;
  duration_ms: number;
  created_at: Date;
}

export interface TaskFilter {
  appId?: string | undefined;
  orderId?: string | undefined;
  eventId?: string | undefined;
  status?: NotifyTaskStatus | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Only tasks with a smaller id (the next page, newest first). */
  before?: string | undefined;
}

function selectTasks(db: Executor) {
  return db
    .selectFrom('notify_tasks as t')
    .innerJoin('events as e', 'e.id', 't.event_id')
    .select([
      't.id',
      't.app_id',
      't.event_id',
      'e.type as event_type',
      'e.order_id',
      'e.refund_id',
      't.url',
      't.status',
      't.attempts',
      't.max_attempts',
      't.next_attempt_at',
      't.last_error',
      't.delivered_at',
      't.created_at',
      't.updated_at',
    ]);
}

export async function listTasks(db: Executor, filter: TaskFilter, limit: number): Promise<TaskRow[]> {
  let query = selectTasks(db);
  if (filter.appId !== undefined) query = query.where('t.app_id', '=', filter.appId);
  if (filter.orderId !== undefined) query = query.where('e.order_id', '=', filter.orderId);
  if (filter.eventId !== undefined) query = query.where('t.event_id', '=', filter.eventId);
  if (filter.status !== undefined) query = query.where('t.status', '=', filter.status);
  if (filter.from !== undefined) query = query.where('t.created_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('t.created_at', '<', filter.to);
  if (filter.before !== undefined) query = query.where('t.id', '<', filter.before);
  return query.orderBy('t.id', 'desc').limit(limit).execute();
}

/** One task; with `appId`, only if it belongs to that app. */
export async function findTask(db: Executor, id: string, appId?: string): Promise<TaskRow | undefined> {
  let query = selectTasks(db).where('t.id', '=', id);
  if (appId !== undefined) query = query.where('t.app_id', '=', appId);
  return query.executeTakeFirst();
}

export async function listLogs(db: Executor, taskId: string): Promise<LogRow[]> {
  return db.selectFrom('notify_logs').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
}

/**
 * Makes a pending or failed task due now. A failed task gets one more try (max_attempts grows when
 * its tries are used up); the try count continues. A task being sent right now keeps its lease (its
 * try completes as usual); a task held back for a busy destination is freed. Delivered tasks are
 * left alone: returns undefined for them, and for a task that does not exist (in this app).
 */
export async function makeDueNow(
  db: Executor,
  id: string,
  now: Date,
  appId?: string,
): Promise<{ id: string } | undefined> {
  let query = db
    .updateTable('notify_tasks')
    .set({
      status: 'pending',
      next_attempt_at: now,
      max_attempts: sql<number>`greatest(max_attempts, attempts + 1)`,
      locked_until: sql<Date | null>`CASE WHEN locked_by IS NULL THEN NULL ELSE locked_until END`,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('status', '<>', 'succeeded');
  if (appId !== undefined) query = query.where('app_id', '=', appId);
  return query.returning('id').executeTakeFirst();
}
