import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.js';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import { REFUND_LIMITS, type RefundService } from './refund.service.js';

const RefundStatusSchema = Type.Union([
  Type.Literal('waiting'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
]);

const RefundView = Type.Object({
  id: Type.String(),
  orderId: Type.String(),
  attemptId: Type.String({ description: 'the paid attempt the money goes back through' }),
  kind: Type.Union([Type.Literal('merchant'), Type.Literal('duplicate_payment')], {
    description: 'merchant: you asked for it; duplicate_payment: paycenter returning a second payment',
  }),
  merchantRefundId: Nullable(Type.String()),
  no: Type.String({ description: 'sent to the channel as out_refund_no' }),
  amount: Type.Integer({ description: 'fen' }),
  reason: Nullable(Type.String()),
  status: RefundStatusSchema,
  channelRefundNo: Nullable(Type.String()),
  failureReason: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  succeededAt: Nullable(Type.String({ format: 'date-time' })),
  failedAt: Nullable(Type.String({ format: 'date-time' })),
});

const CreateRefundBody = Type.Object(
  {
    orderId: Type.Optional(Type.String({ maxLength: 20, description: "paycenter's order id" })),
    merchantOrderId: Type.Optional(
      Type.String({ maxLength: 64, description: 'or your order id (give exactly one of the two)' }),
    ),
    merchantRefundId: Type.String({
      pattern: REFUND_LIMITS.merchantRefundId.source,
      description: 'your refund id, unique per app: repeating it repeats nothing',
    }),
    amount: Type.Integer({ minimum: 1, description: 'fen' }),
    reason: Type.Optional(Type.String({ maxLength: REFUND_LIMITS.reasonMax })),
  },
  { additionalProperties: false },
);

export const refundRoutes: FastifyPluginAsyncTypebox<{ refunds: RefundService }> = async (
  app,
  { refunds },
) => {
  const tags = ['refunds'];

  app.post(
    '/refunds',
    {
      schema: {
        tags,
        summary: 'Refund (part of) a paid order (idempotent on merchantRefundId)',
        description:
          'The amount must fit in what is left of the order after succeeded refunds and refunds still in ' +
          'progress (409 refund_exceeds_balance). Alipay answers at once; WeChat Pay usually finishes later ' +
          '(status waiting, then refund.succeeded or refund.failed by webhook). A channel refusal answers 201 with ' +
          'status failed and its reason. The same merchantRefundId again answers 200 with the existing refund; with ' +
          'another order or amount, 409 refund_conflict.',
        body: CreateRefundBody,
        response: { 200: RefundView, 201: RefundView, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const { refund, created } = await refunds.create(principalOf(request), request.body);
      return reply.status(created ? 201 : 200).send(refund);
    },
  );

  app.get(
    '/refunds/:id',
    {
      schema: {
        tags,
        summary: 'Get a refund',
        params: IdParams,
        response: { 200: RefundView, ...errorResponses(401, 404) },
      },
    },
    async (request) => refunds.get(principalOf(request), request.params.id),
  );

  app.get(
    '/refunds',
    {
      schema: {
        tags,
        summary: 'List refunds, newest first; filter by orderId, merchantRefundId or status',
        querystring: Type.Object(
          {
            orderId: Type.Optional(Type.String({ maxLength: 20 })),
            merchantRefundId: Type.Optional(Type.String({ maxLength: 64 })),
            status: Type.Optional(RefundStatusSchema),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            before: Type.Optional(
              Type.String({ maxLength: 20, description: 'a refund id: list older ones' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ data: Type.Array(RefundView), hasMore: Type.Boolean() }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { limit, ...filter } = request.query;
      return refunds.list(principalOf(request), filter, limit ?? 20);
    },
  );
};
