import type { FastifyPluginAsync } from 'fastify';
import type { CallbackService } from './callback.service.js';

/** Callbacks are small; a larger body is not a provider's. */
const CALLBACK_BODY_LIMIT = 64 * 1024;

/**
 * `POST /notify/order/:channelId` and `POST /notify/refund/:channelId`. No auth: the signature is
 * the auth. Bodies stay raw strings, since WeChat's signature covers the exact bytes.
 */
export const callbackRoutes: FastifyPluginAsync<{ callbacks: CallbackService }> = async (
  app,
  { callbacks },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/json', 'application/x-www-form-urlencoded', 'text/plain'],
    { parseAs: 'string', bodyLimit: CALLBACK_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  );

  for (const kind of ['order', 'refund'] as const) {
    app.post<{ Params: { channelId: string }; Body: string | undefined }>(
      `/notify/${kind}/:channelId`,
      {
        bodyLimit: CALLBACK_BODY_LIMIT,
        schema: {
          tags: ['channel callbacks'],
          summary: `The channels' ${kind} callbacks (signed by the provider)`,
        },
      },
      async (request, reply) => {
        const outcome = await callbacks.handle(
          kind,
          request.params.channelId,
          {
            headers: request.headers,
            rawBody: typeof request.body === 'string' ? request.body : '',
            contentType: request.headers['content-type'],
          },
          request.log,
        );
        if (!outcome.handled) return reply.status(404).type('text/plain').send('unknown channel');
        return reply.status(outcome.answer.status).type(outcome.answer.contentType).send(outcome.answer.body);
      },
    );
  }
};
