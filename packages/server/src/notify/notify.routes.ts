import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TProperties, Type } from 'typebox';
import { principalOf } from '../http/auth.js';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import type { NotifyService } from './notify.service.js';

const TaskStatus = Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]);

export const NotifyTaskView = Type.Object({
  id: Type.String(),
  appId: Type.String(),
  eventId: Type.String({ description: 'also the webhook-id header and the body id: stable across retries' }),
  eventType: Type.String(),
  orderId: Nullable(Type.String()),
  refundId: Nullable(Type.String()),
  url: Type.String(),
  status: TaskStatus,
  attempts: Type.Integer({ description: 'tries made so far' }),
  maxAttempts: Type.Integer(),
  nextAttemptAt: Nullable(Type.String({ format: 'date-time', description: 'null once delivered or failed' })),
  lastError: Nullable(Type.String()),
  deliveredAt: Nullable(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const NotifyLogView = Type.Object({
  id: Type.String(),
  attemptNo: Type.Integer(),
  httpStatus: Nullable(Type.Integer()),
  responseExcerpt: Nullable(Type.String({ description: 'the first 2 KB of the answer' })),
  error: Nullable(Type.String({ description: 'why this try did not deliver' })),
  durationMs: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});

const NotifyTaskDetail = Type.Intersect([NotifyTaskView, Type.Object({ logs: Type.Array(NotifyLogView) })]);

const TaskList = Type.Object({ data: Type.Array(NotifyTaskView), hasMore: Type.Boolean() });

const Id = (description: string) => Type.Optional(Type.String({ maxLength: 20, description }));
const DEFAULT_LIMIT = 20;
/** The paging fields of both task lists. */
const Page = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIMIT })),
  before: Id('a task id: list tasks older than it'),
};

/** The schemas the merchant and admin scopes share but for their tags. */
const listSchema = <Q extends TProperties>(tags: string[], summary: string, query: Q) => ({
  tags,
  summary,
  querystring: Type.Object({ ...query, ...Page }, { additionalProperties: false }),
  response: { 200: TaskList, ...errorResponses(400, 401) },
});
const detailSchema = (tags: string[]) => ({
  tags,
  summary: 'Get a webhook task with the log of its tries',
  params: IdParams,
  response: { 200: NotifyTaskDetail, ...errorResponses(401, 404) },
});
const retrySchema = (tags: string[]) => ({
  tags,
  summary: 'Try a webhook again now',
  description:
    'A pending or failed task is tried now; its try count continues, and a failed task gets one more try. ' +
    'A delivered task answers 409 notify_task_delivered.',
  params: IdParams,
  response: { 200: NotifyTaskView, ...errorResponses(401, 404, 409) },
});

/** Merchant API, under /api/v1 behind the API key. */
export const notifyRoutes: FastifyPluginAsyncTypebox<{ notify: NotifyService }> = async (app, { notify }) => {
  const tags = ['webhooks'];

  app.get(
    '/notify-tasks',
    {
      schema: listSchema(tags, 'List webhook tasks, newest first, for an order or an event', {
        orderId: Id('tasks of this order'),
        eventId: Id('tasks of this event'),
      }),
    },
    async (request) => {
      const { limit, ...filter } = request.query;
      return notify.list(principalOf(request), filter, limit ?? DEFAULT_LIMIT);
    },
  );

  app.get('/notify-tasks/:id', { schema: detailSchema(tags) }, async (request) =>
    notify.get(principalOf(request), request.params.id),
  );

  app.post('/notify-tasks/:id/retry', { schema: retrySchema(tags) }, async (request) =>
    notify.retry(principalOf(request), request.params.id),
  );
};

/** Admin API, under /admin-api behind the admin token: every app's tasks. */
export const adminNotifyRoutes: FastifyPluginAsyncTypebox<{ notify: NotifyService }> = async (
  app,
  { notify },
) => {
  const tags = ['admin: webhooks'];

  app.get(
    '/notify-tasks',
    {
      schema: listSchema(tags, 'List webhook tasks across apps, newest first', {
        status: Type.Optional(TaskStatus),
        appId: Id('tasks of this app'),
        from: Type.Optional(Type.String({ format: 'date-time', description: 'created at or after' })),
        to: Type.Optional(Type.String({ format: 'date-time', description: 'created before' })),
      }),
    },
    async (request) => {
      const { limit, ...filter } = request.query;
      return notify.adminList(filter, limit ?? DEFAULT_LIMIT);
    },
  );

  app.get('/notify-tasks/:id', { schema: detailSchema(tags) }, async (request) =>
    notify.adminGet(request.params.id),
  );

  app.post('/notify-tasks/:id/retry', { schema: retrySchema(tags) }, async (request) =>
    notify.adminRetry(request.params.id),
  );
};
