import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errorResponses, IdParams } from '../http/schemas.js';
import type { ChannelService } from './channel.service.js';
import { CHANNEL_CODES } from './channel-codes.js';

const ChannelView = Type.Object({
  id: Type.String(),
  appId: Type.String(),
  code: Type.String({ enum: [...CHANNEL_CODES] }),
  status: Type.Union([Type.Literal('enabled'), Type.Literal('disabled')]),
  feeRate: Type.Integer({ description: 'basis points' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const Config = Type.Record(Type.String(), Type.Unknown(), {
  description:
    'Provider credentials. WeChat Pay v3: mchId, appId, apiV3Key, merchantSerialNo, merchantPrivateKey (PEM), ' +
    'platformPublicKey (PEM), platformPublicKeyId, baseUrl?. Alipay: appId, privateKey, alipayPublicKey, gateway?, ' +
    'signType? (RSA2). Stored encrypted; never returned.',
});
const FeeRate = Type.Integer({ minimum: 0, maximum: 10000, description: 'basis points' });

export const channelRoutes: FastifyPluginAsyncTypebox<{ channels: ChannelService }> = async (
  app,
  { channels },
) => {
  const tags = ['admin: channels'];

  app.post(
    '/channels',
    {
      schema: {
        tags,
        summary: 'Enable a channel for an app with its credentials',
        body: Type.Object(
          {
            appId: Type.String({ maxLength: 20 }),
            code: Type.String({ maxLength: 32 }),
            config: Config,
            feeRate: Type.Optional(FeeRate),
          },
          { additionalProperties: false },
        ),
        response: { 201: ChannelView, ...errorResponses(400, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await channels.create(request.body)),
  );

  app.get(
    '/channels',
    {
      schema: {
        tags,
        summary: 'List channels',
        querystring: Type.Object(
          { appId: Type.Optional(Type.String({ maxLength: 20 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ data: Type.Array(ChannelView) }) },
      },
    },
    async (request) => ({ data: await channels.list(request.query.appId) }),
  );

  app.get(
    '/channels/:id',
    {
      schema: {
        tags,
        summary: 'Get a channel',
        params: IdParams,
        response: { 200: ChannelView, ...errorResponses(404) },
      },
    },
    async (request) => channels.get(request.params.id),
  );

  app.patch(
    '/channels/:id',
    {
      schema: {
        tags,
        summary: "Change a channel's status, credentials or fee rate",
        params: IdParams,
        body: Type.Object(
          {
            status: Type.Optional(Type.Union([Type.Literal('enabled'), Type.Literal('disabled')])),
            config: Type.Optional(Config),
            feeRate: Type.Optional(FeeRate),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: ChannelView, ...errorResponses(400, 404) },
      },
    },
    async (request) => channels.update(request.params.id, request.body),
  );

  app.delete(
    '/channels/:id',
    {
      schema: {
        tags,
        summary: 'Delete a channel that never carried a payment',
        params: IdParams,
        response: errorResponses(404, 409),
      },
    },
    async (request, reply) => {
      await channels.delete(request.params.id);
      return reply.status(204).send();
    },
  );
};
