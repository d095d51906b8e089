import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.js';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import { MAX_URL_LENGTH } from '../validation.js';
import { ORDER_LIMITS, type OrderService } from './order.service.js';

const OrderStatus = Type.Union([
  Type.Literal('waiting'),
  Type.Literal('paid'),
  Type.Literal('closed'),
  Type.Literal('refunded'),
]);

export const OrderView = Type.Object({
  id: Type.String(),
  appId: Type.String(),
  merchantOrderId: Type.String(),
  subject: Type.String(),
  body: Nullable(Type.String()),
  amount: Type.Integer({ description: 'fen' }),
  currency: Type.String(),
  status: OrderStatus,
  refundedAmount: Type.Integer({ description: 'fen' }),
  expireAt: Type.String({ format: 'date-time' }),
  notifyUrl: Nullable(Type.String()),
  returnUrl: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.String()),
  clientToken: Type.String({ description: "authorises the paying browser to read this order's status" }),
  channelCode: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  paidAt: Nullable(Type.String({ format: 'date-time' })),
  closedAt: Nullable(Type.String({ format: 'date-time' })),
});

const Url = Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH });

const CreateOrderBody = Type.Object(
  {
    merchantOrderId: Type.String({
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      description: 'your order id, unique per app',
    }),
    subject: Type.String({ minLength: 1, maxLength: ORDER_LIMITS.subjectMax }),
    amount: Type.Integer({ minimum: 1, maximum: ORDER_LIMITS.amountMax, description: 'fen' }),
    currency: Type.Optional(Type.Literal('CNY')),
    body: Type.Optional(Type.String({ maxLength: ORDER_LIMITS.bodyMax })),
    expireInSeconds: Type.Optional(
      Type.Integer({
        minimum: ORDER_LIMITS.expireMinSeconds,
        maximum: ORDER_LIMITS.expireMaxSeconds,
        default: 7200,
      }),
    ),
    notifyUrl: Type.Optional(Url),
    returnUrl: Type.Optional(Url),
    metadata: Type.Optional(
      Type.Record(
        Type.String({ minLength: 1, maxLength: ORDER_LIMITS.metadataKeyMax }),
        Type.String({ maxLength: ORDER_LIMITS.metadataValueMax }),
        {
          maxProperties: ORDER_LIMITS.metadataMaxKeys,
        },
      ),
    ),
    userIp: Type.Optional(Type.String({ maxLength: 45 })),
  },
  { additionalProperties: false },
);

export const orderRoutes: FastifyPluginAsyncTypebox<{ orders: OrderService }> = async (app, { orders }) => {
  const tags = ['orders'];

  app.post(
    '/orders',
    {
      schema: {
        tags,
        summary: 'Create an order (idempotent on merchantOrderId)',
        description:
          'A repeated request with the same merchantOrderId, amount, currency and subject answers 200 with the ' +
          'existing order; a different amount, currency or subject answers 409 order_conflict.',
        body: CreateOrderBody,
        response: { 200: OrderView, 201: OrderView, ...errorResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const { order, created } = await orders.create(principalOf(request), request.body);
      return reply.status(created ? 201 : 200).send(order);
    },
  );

  app.get(
    '/orders/:id',
    {
      schema: {
        tags,
        summary: 'Get an order',
        params: IdParams,
        response: { 200: OrderView, ...errorResponses(401, 404) },
      },
    },
    async (request) => orders.get(principalOf(request), request.params.id),
  );

  app.get(
    '/orders',
    {
      schema: {
        tags,
        summary: 'List orders, newest first; filter by merchantOrderId or status',
        querystring: Type.Object(
          {
            merchantOrderId: Type.Optional(Type.String({ maxLength: 64 })),
            status: Type.Optional(OrderStatus),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            before: Type.Optional(
              Type.String({ maxLength: 20, description: 'an order id: list orders older than it' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ data: Type.Array(OrderView), hasMore: Type.Boolean() }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { limit, ...filter } = request.query;
      return orders.list(principalOf(request), filter, limit ?? 20);
    },
  );

  app.post(
    '/orders/:id/close',
    {
      schema: {
        tags,
        summary: 'Close a waiting order',
        description:
          'Emits order.closed. Closing a closed order answers it unchanged; a paid order answers 409 order_paid.',
        params: IdParams,
        response: { 200: OrderView, ...errorResponses(401, 404, 409) },
      },
    },
    async (request) => orders.close(principalOf(request), request.params.id),
  );
};
