import type { Kysely } from 'kysely';
import type { MerchantPrincipal } from '../apps/app.service.js';
import type { Clock } from '../clock.js';
import type { DB, EventType, NotifyTaskStatus } from '../db/schema.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { isRowId } from '../validation.js';
import * as repo from './notify.repository.js';
import type { NotifyWakeup } from './wakeup.js';

/** A notify task as the merchant and admin APIs show it. Ids as strings. */
export interface NotifyTaskView {
  id: string;
  appId: string;
  eventId: string;
  eventType: EventType;
  orderId: string | null;
  refundId: string | null;
  url: string;
  status: NotifyTaskStatus;
  attempts: number;
  maxAttempts: number;
  /** When the next try is due; null once the task is delivered or failed. */
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NotifyLogView {
  id: string;
  attemptNo: number;
  httpStatus: number | null;
  responseExcerpt: string | null;
  error: string | null;
  durationMs: number;
  createdAt: string;
}

export interface NotifyTaskDetail extends NotifyTaskView {
  logs: NotifyLogView[];
}

export interface AdminTaskFilter {
  status?: NotifyTaskStatus | undefined;
  appId?: string | undefined;
  /** ISO date-times: tasks created at or after `from` and before `to`. */
  from?: string | undefined;
  to?: string | undefined;
  before?: string | undefined;
}

export function toNotifyTaskView(row: repo.TaskRow): NotifyTaskView {
  return {
    id: row.id,
    appId: row.app_id,
    eventId: row.event_id,
    eventType: row.event_type,
    orderId: row.order_id,
    refundId: row.refund_id,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at.toISOString() : null,
    lastError: row.last_error,
    deliveredAt: row.delivered_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function toLogView(row: repo.LogRow): NotifyLogView {
  return {
    id: row.id,
    attemptNo: row.attempt_no,
    httpStatus: row.http_status,
    responseExcerpt: row.response_excerpt,
    error: row.error,
    durationMs: row.duration_ms,
    createdAt: row.created_at.toISOString(),
  };
}

function checkId(field: string, value: string | undefined): string | undefined {
  if (value !== undefined && !isRowId(value)) throw invalidRequest(field, 'must be an id');
  return value;
}

function checkDate(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalidRequest(field, 'must be an ISO 8601 date-time');
  return date;
}

/** Webhook tasks: what was sent where, with every try; and manual retries. */
export class NotifyService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly clock: Clock,
    /** Wakes the dispatchers after a retry is committed. */
    private readonly wakeup?: NotifyWakeup,
  ) {}

  /** The app's tasks, newest first, for one order or one event (or all). */
  async list(
    principal: MerchantPrincipal,
    filter: { orderId?: string | undefined; eventId?: string | undefined; before?: string | undefined },
    limit: number,
  ): Promise<{ data: NotifyTaskView[]; hasMore: boolean }> {
    return this.#list(
      {
        appId: principal.appId,
        orderId: checkId('orderId', filter.orderId),
        eventId: checkId('eventId', filter.eventId),
        before: checkId('before', filter.before),
      },
      limit,
    );
  }

  async get(principal: MerchantPrincipal, id: string): Promise<NotifyTaskDetail> {
    return this.#detail(id, principal.appId);
  }

  /**
   * Tries a pending or failed task now; its try count continues, and a failed one gets one more try.
   * A delivered task answers 409 notify_task_delivered.
   */
  async retry(principal: MerchantPrincipal, id: string): Promise<NotifyTaskView> {
    return this.#retry(id, principal.appId);
  }

  async adminList(
    filter: AdminTaskFilter,
    limit: number,
  ): Promise<{ data: NotifyTaskView[]; hasMore: boolean }> {
    const from = checkDate('from', filter.from);
    const to = checkDate('to', filter.to);
    return this.#list(
      {
        status: filter.status,
        appId: checkId('appId', filter.appId),
        from,
        to,
        before: checkId('before', filter.before),
      },
      limit,
    );
  }

  async adminGet(id: string): Promise<NotifyTaskDetail> {
    return this.#detail(id);
  }

  async adminRetry(id: string): Promise<NotifyTaskView> {
    return this.#retry(id);
  }

  async #list(filter: repo.TaskFilter, limit: number): Promise<{ data: NotifyTaskView[]; hasMore: boolean }> {
    const rows = await repo.listTasks(this.db, filter, limit + 1);
    return { data: rows.slice(0, limit).map(toNotifyTaskView), hasMore: rows.length > limit };
  }

  async #detail(id: string, appId?: string): Promise<NotifyTaskDetail> {
    const row = isRowId(id) ? await repo.findTask(this.db, id, appId) : undefined;
    if (!row) throw notFound('notify task');
    const logs = await repo.listLogs(this.db, row.id);
    return { ...toNotifyTaskView(row), logs: logs.map(toLogView) };
  }

  async #retry(id: string, appId?: string): Promise<NotifyTaskView> {
    if (!isRowId(id)) throw notFound('notify task');
    const updated = await repo.makeDueNow(this.db, id, this.clock.now(), appId);
    if (!updated) {
      const row = await repo.findTask(this.db, id, appId);
      if (!row) throw notFound('notify task');
      throw new AppError('notify_task_delivered', 'this webhook was delivered; there is nothing to retry', {
        details: { taskId: row.id },
      });
    }
    this.wakeup?.wake();
    const row = await repo.findTask(this.db, id, appId);
    if (!row) throw notFound('notify task');
    return toNotifyTaskView(row);
  }
}
