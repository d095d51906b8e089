import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { CHANNEL_CODES } from '../channels/channel-codes.js';
import { principalOf } from '../http/auth.js';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import { OrderView } from '../orders/order.routes.js';
import type { OrderService } from '../orders/order.service.js';
import type { SubmitService } from './submit.service.js';

export const AttemptView = Type.Object({
  id: Type.String(),
  orderId: Type.String(),
  no: Type.String({ description: 'sent to the channel as out_trade_no' }),
  channelCode: Type.String(),
  status: Type.Union([
    Type.Literal('waiting'),
    Type.Literal('paid'),
    Type.Literal('closed'),
    Type.Literal('failed'),
  ]),
  amount: Type.Integer({ description: 'fen' }),
  displayMode: Nullable(
    Type.Union([
      Type.Literal('qr_code'),
      Type.Literal('url'),
      Type.Literal('form'),
      Type.Literal('app'),
      Type.Literal('jsapi'),
      Type.Literal('none'),
    ]),
  ),
  displayContent: Nullable(Type.String()),
  channelTradeNo: Nullable(Type.String()),
  failureCode: Nullable(Type.String()),
  failureMessage: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  paidAt: Nullable(Type.String({ format: 'date-time' })),
});

const ChannelExtras = Type.Object(
  {
    openid: Type.Optional(
      Type.String({ maxLength: 128, description: "wx_jsapi, wx_lite: the payer's openid" }),
    ),
    authCode: Type.Optional(
      Type.String({ maxLength: 32, description: 'alipay_bar: the code the payer shows' }),
    ),
    h5Type: Type.Optional(
      Type.String({ maxLength: 16, description: 'wx_h5: iOS, Android or Wap (default)' }),
    ),
    quitUrl: Type.Optional(Type.String({ maxLength: 2048, description: 'alipay_wap: where "leave" goes' })),
  },
  { additionalProperties: false },
);

export const attemptRoutes: FastifyPluginAsyncTypebox<{
  submissions: SubmitService;
  orders: OrderService;
}> = async (app, { submissions, orders }) => {
  const tags = ['orders'];

  app.post(
    '/orders/:id/submit',
    {
      schema: {
        tags,
        summary: 'Submit an order to a channel',
        description:
          'Creates an attempt with a fresh out_trade_no and asks the channel for a payment. displayMode says what ' +
          'to do with displayContent: qr_code (a URL to render as a QR code), url (redirect), form (HTML to ' +
          'submit), app (parameters for the provider SDK), jsapi (parameters for WeixinJSBridge / wx.requestPayment), ' +
          'none (bar code: the answer is the outcome).',
        params: IdParams,
        body: Type.Object(
          {
            channelCode: Type.String({ enum: [...CHANNEL_CODES] }),
            channelExtras: Type.Optional(ChannelExtras),
          },
          { additionalProperties: false },
        ),
        response: { 201: AttemptView, ...errorResponses(400, 401, 404, 409, 502) },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await submissions.submit(principalOf(request), request.params.id, request.body)),
  );

  app.get(
    '/orders/:id/attempts',
    {
      schema: {
        tags,
        summary: "An order's attempts, oldest first",
        params: IdParams,
        response: { 200: Type.Object({ data: Type.Array(AttemptView) }), ...errorResponses(401, 404) },
      },
    },
    async (request) => ({ data: await submissions.list(principalOf(request), request.params.id) }),
  );

  app.post(
    '/orders/:id/sync',
    {
      schema: {
        tags,
        summary: "Ask the channels about the order's waiting attempts now",
        description:
          'For a callback you suspect lost: each waiting attempt (the newest five) is queried and a payment found ' +
          'is applied exactly as its callback would be (order.paid once, however many times you ask). Channels ' +
          'that could not answer are listed in failures.',
        params: IdParams,
        response: {
          200: Type.Object({
            queried: Type.Integer(),
            applied: Type.Integer(),
            failures: Type.Array(
              Type.Object({ attemptNo: Type.String(), providerCode: Type.String(), message: Type.String() }),
            ),
            order: OrderView,
          }),
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const result = await submissions.sync(principal.appId, request.params.id);
      return { ...result, order: await orders.get(principal, request.params.id) };
    },
  );
};
