import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Clock } from '../clock.js';
import type { OrderRow } from '../db/schema.js';
import { errorResponses, IdParams, Nullable } from '../http/schemas.js';
import type { OrderFeed } from '../realtime/order-feed.js';
import { formatEvent, openEventStream, type SseStream } from '../realtime/sse.js';
import {
  BROWSER_CHANNELS,
  isFinal,
  type PublicOrderService,
  rankOfEventId,
  statusEventId,
  statusRank,
} from './public-order.service.js';

export const PublicOrderView = Type.Object({
  id: Type.String(),
  status: Type.Union([
    Type.Literal('waiting'),
    Type.Literal('paid'),
    Type.Literal('closed'),
    Type.Literal('refunded'),
  ]),
  amount: Type.Integer({ description: 'fen' }),
  currency: Type.String(),
  subject: Type.String(),
  expireAt: Type.String({ format: 'date-time' }),
  paidAt: Nullable(Type.String({ format: 'date-time' })),
  channelCode: Nullable(Type.String()),
  returnUrl: Type.Optional(
    Type.String({
      description:
        'once the order is final: the return URL (the order’s, else the app’s) with orderId, merchantOrderId, ' +
        'status, ts and sig appended — see docs/cashier.md',
    }),
  ),
});

const TokenQuery = Type.Object(
  { token: Type.Optional(Type.String({ maxLength: 128, description: "the order's clientToken" })) },
  { additionalProperties: false },
);

export interface PublicRoutesOptions {
  orders: PublicOrderService;
  feed: OrderFeed;
  clock: Clock;
  /**
   * Read when each stream opens. `heartbeatMs`: a comment line this often keeps idle streams (and the
   * proxies between) open (15 s). `retryMs`: the `retry:` hint, how soon a browser reconnects a lost
   * stream (3 s). `expiredGraceMs`: a waiting order's stream ends this long after it expired (60 s).
   */
  settings: { heartbeatMs: number; retryMs: number; expiredGraceMs: number };
}

/**
 * The paying browser's API, under `/api/v1/public`, authorised by the order's client token
 * (`?token=`). Nothing here is cached by browsers or proxies.
 */
export const publicRoutes: FastifyPluginAsyncTypebox<PublicRoutesOptions> = async (app, options) => {
  const { orders, feed, clock, settings } = options;
  const tags = ['paying browser'];
  const streams = new Set<SseStream>();
  /**
   * The `status` frame of a row, formatted once: the feed hands every stream watching an order the
   * same row object, so however many browsers watch it, the view is built and serialised once.
   */
  const frames = new WeakMap<OrderRow, Promise<string>>();
  const statusFrame = (row: OrderRow): Promise<string> => {
    let frame = frames.get(row);
    if (!frame) {
      frame = orders
        .view(row)
        .then((view) =>
          formatEvent({ id: statusEventId(row.status), event: 'status', data: JSON.stringify(view) }),
        );
      frames.set(row, frame);
    }
    return frame;
  };

  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  app.get(
    '/orders/:id',
    {
      schema: {
        tags,
        summary: "An order's status, for the paying browser",
        params: IdParams,
        querystring: TokenQuery,
        response: { 200: PublicOrderView, ...errorResponses(404) },
      },
    },
    async (request) => orders.get(request.params.id, request.query.token),
  );

  app.get(
    '/orders/:id/events',
    {
      schema: {
        tags,
        summary: "An order's status as Server-Sent Events",
        description:
          'Sends the current status at once (event `status`, id `<rank>-<status>`), then an event on every change; ' +
          'a comment line every 15 s as heartbeat. A reconnect with Last-Event-ID (header, or `lastEventId` in the ' +
          'query) gets only what is newer. The stream ends after a final status (paid, closed, refunded); a ' +
          'reconnect that already saw it gets 204, which tells EventSource to stop.',
        params: IdParams,
        querystring: Type.Object(
          {
            token: Type.Optional(Type.String({ maxLength: 128 })),
            lastEventId: Type.Optional(Type.String({ maxLength: 32 })),
          },
          { additionalProperties: false },
        ),
        response: { ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const row = await orders.authorize(request.params.id, request.query.token);
      const { heartbeatMs, retryMs, expiredGraceMs } = settings;
      const header = request.headers['last-event-id'];
      const lastRank = rankOfEventId(typeof header === 'string' ? header : request.query.lastEventId);
      // A waiting order's stream ends `expiredGraceMs` after its expiry; past that, it is over.
      const untilEnd = row.expire_at.getTime() + expiredGraceMs - clock.now().getTime();
      const over = isFinal(row.status) || (row.status === 'waiting' && untilEnd < 0);
      if (over && statusRank(row.status) <= lastRank) return reply.status(204).send();

      const stream = openEventStream(request, reply, { retryMs });
      streams.add(stream);
      let sentRank = lastRank;
      let sending: Promise<void> = Promise.resolve();
      const push = (order: OrderRow) => {
        const rank = statusRank(order.status);
        if (stream.closed || rank <= sentRank) return;
        sentRank = rank;
        sending = sending
          .then(async () => {
            const frame = await statusFrame(order);
            // A final status ends the stream in the same write.
            if (isFinal(order.status)) stream.end(frame);
            else stream.write(frame);
          })
          .catch((error: unknown) => {
            request.log.error({ err: error, orderId: order.id }, 'sending an order status event failed');
            stream.end();
          });
      };
      const unwatch = feed.watch(row.id, push, row.status);
      const heartbeat = setInterval(() => stream.comment('heartbeat'), heartbeatMs);
      const expiry =
        row.status === 'waiting'
          ? setTimeout(() => stream.end(), Math.max(0, Math.min(untilEnd, 2 ** 31 - 1)))
          : undefined;
      stream.onClose(() => {
        streams.delete(stream);
        unwatch();
        clearInterval(heartbeat);
        clearTimeout(expiry);
      });

      push(row);
      if (over) {
        // A final (or long expired) order: its status is the whole stream.
        await sending;
        stream.end();
        return reply;
      }
      // Watching started after `row` was read: a change in between is caught by one fresh read.
      const fresh = await orders.find(row.id);
      if (fresh) push(fresh);
      return reply;
    },
  );

  app.post(
    '/orders/:id/submit',
    {
      schema: {
        tags,
        summary: 'Pay with one of the app’s channels, from the paying browser',
        description:
          'Same rules as the merchant submit. Only the channels a browser can use: ' +
          `${BROWSER_CHANNELS.join(', ')}. wx_jsapi needs the payer's openid.`,
        params: IdParams,
        querystring: TokenQuery,
        body: Type.Object(
          {
            channelCode: Type.String({ enum: [...BROWSER_CHANNELS] }),
            openid: Type.Optional(
              Type.String({ maxLength: 128, description: 'wx_jsapi: the payer’s openid' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            attempt: Type.Object({
              id: Type.String(),
              no: Type.String(),
              channelCode: Type.String(),
              status: Type.String(),
              displayMode: Nullable(Type.String()),
              displayContent: Nullable(Type.String()),
            }),
            qrSvg: Type.Optional(Type.String({ description: 'qr_code: the QR code as inline SVG' })),
            walletUrl: Type.Optional(
              Type.String({ description: 'sandbox mode: the wallet page that pays this' }),
            ),
          }),
          ...errorResponses(400, 403, 404, 409, 429, 502),
        },
      },
    },
    async (request, reply) => {
      const result = await orders.submit(request.params.id, request.query.token, request.body, {
        ip: request.ip || null,
        userAgent: request.headers['user-agent'] ?? '',
      });
      return reply.status(201).send(result);
    },
  );

  app.post(
    '/orders/:id/sync',
    {
      schema: {
        tags,
        summary: '"I have paid": ask the channel now',
        description:
          "Queries the channel about the order's waiting attempts and applies the answers. At most once per 5 s " +
          'per order: sooner answers 429 with Retry-After.',
        params: IdParams,
        querystring: TokenQuery,
        response: {
          200: Type.Object({
            order: PublicOrderView,
            sync: Type.Object({ queried: Type.Integer(), applied: Type.Integer(), failed: Type.Integer() }),
          }),
          ...errorResponses(404, 429),
        },
      },
    },
    async (request) => orders.sync(request.params.id, request.query.token),
  );
};
