import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import { MAX_SCHEDULE_STEPS, MAX_URL_LENGTH } from '../validation.js';
import type { AppService } from './app.service.js';

const Url = Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH, description: 'http(s) URL' });
const Schedule = Type.Array(Type.Integer({ minimum: 1 }), {
  minItems: 1,
  maxItems: MAX_SCHEDULE_STEPS,
  description: 'seconds between webhook tries after the first, immediate one',
});

const AppView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  notifyUrl: Type.String(),
  returnUrl: Nullable(Type.String()),
  notifySchedule: Nullable(Type.Array(Type.Integer())),
  autoRefundDuplicates: Type.Boolean({
    description: 'refund a second payment of an already paid order automatically',
  }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const AppCreated = Type.Intersect([
  AppView,
  Type.Object({
    apiKey: Type.String({ description: 'shown once' }),
    webhookSecret: Type.String({ description: 'Standard Webhooks secret (whsec_…), shown once' }),
  }),
]);

const ApiKeyView = Type.Object({
  id: Type.String(),
  appId: Type.String(),
  prefix: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Nullable(Type.String({ format: 'date-time' })),
});

export const appRoutes: FastifyPluginAsyncTypebox<{ apps: AppService }> = async (app, { apps }) => {
  const tags = ['admin: apps'];

  app.post(
    '/apps',
    {
      schema: {
        tags,
        summary: 'Create an app, with its first API key and its webhook secret',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            notifyUrl: Url,
            returnUrl: Type.Optional(Nullable(Url)),
            notifySchedule: Type.Optional(Nullable(Schedule)),
            autoRefundDuplicates: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 201: AppCreated, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => reply.status(201).send(await apps.create(request.body)),
  );

  app.get(
    '/apps',
    { schema: { tags, summary: 'List apps', response: { 200: Type.Object({ data: Type.Array(AppView) }) } } },
    async () => ({ data: await apps.list() }),
  );

  app.get(
    '/apps/:id',
    {
      schema: {
        tags,
        summary: 'Get an app',
        params: IdParams,
        response: { 200: AppView, ...errorResponses(404) },
      },
    },
    async (request) => apps.get(request.params.id),
  );

  app.patch(
    '/apps/:id',
    {
      schema: {
        tags,
        summary: 'Update an app',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
            notifyUrl: Type.Optional(Url),
            returnUrl: Type.Optional(Nullable(Url)),
            notifySchedule: Type.Optional(Nullable(Schedule)),
            autoRefundDuplicates: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: AppView, ...errorResponses(400, 404) },
      },
    },
    async (request) => apps.update(request.params.id, request.body),
  );

  app.get(
    '/apps/:id/api-keys',
    {
      schema: {
        tags,
        summary: "List an app's API keys (prefixes only)",
        params: IdParams,
        response: { 200: Type.Object({ data: Type.Array(ApiKeyView) }), ...errorResponses(404) },
      },
    },
    async (request) => ({ data: await apps.listApiKeys(request.params.id) }),
  );

  app.post(
    '/apps/:id/api-keys',
    {
      schema: {
        tags,
        summary: 'Issue another API key; older keys stay valid until revoked',
        params: IdParams,
        response: {
          201: Type.Intersect([
            ApiKeyView,
            Type.Object({ apiKey: Type.String({ description: 'shown once' }) }),
          ]),
          ...errorResponses(404),
        },
      },
    },
    async (request, reply) => reply.status(201).send(await apps.createApiKey(request.params.id)),
  );

  app.delete(
    '/api-keys/:id',
    {
      schema: {
        tags,
        summary: 'Revoke an API key',
        params: IdParams,
        response: { 200: ApiKeyView, ...errorResponses(404) },
      },
    },
    async (request) => apps.revokeApiKey(request.params.id),
  );
};
