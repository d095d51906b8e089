import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { appRoutes } from '../apps/app.routes.js';
import type { AppService } from '../apps/app.service.js';
import { attemptRoutes } from '../attempts/attempt.routes.js';
import type { SubmitService } from '../attempts/submit.service.js';
import { callbackRoutes } from '../callbacks/callback.routes.js';
import type { CallbackService } from '../callbacks/callback.service.js';
import { channelRoutes } from '../channels/channel.routes.js';
import type { ChannelService } from '../channels/channel.service.js';
import type { Config } from '../config/config.js';
import { randomBase62 } from '../crypto/tokens.js';
import { AppError } from '../errors.js';
import { loggerOptions } from '../logger.js';
import { adminNotifyRoutes, notifyRoutes } from '../notify/notify.routes.js';
import type { NotifyService } from '../notify/notify.service.js';
import { orderRoutes } from '../orders/order.routes.js';
import type { OrderService } from '../orders/order.service.js';
import { refundRoutes } from '../refunds/refund.routes.js';
import type { RefundService } from '../refunds/refund.service.js';
import { VERSION } from '../version.js';
import { adminAuth, merchantAuth } from './auth.js';
import { installErrorHandling } from './errors.js';
import { ErrorResponse } from './schemas.js';

export interface HttpDependencies {
  config: Pick<Config, 'bodyLimitBytes' | 'rateLimitPerMinute' | 'logLevel' | 'publicUrl'>;
  adminToken: string | undefined;
  apps: AppService;
  channels: ChannelService;
  orders: OrderService;
  submissions: SubmitService;
  refunds: RefundService;
  callbacks: CallbackService;
  notify: NotifyService;
  /** The paying browser's routes: /api/v1/public/… and /cashier/:id (realtime/live-status.ts). */
  live?: FastifyPluginAsync;
  /** The provider sandbox, mounted at /__sandbox when enabled. */
  sandbox?: FastifyPluginAsync;
  /** `/ready`: the database answers and is migrated. */
  readiness: () => Promise<{ ready: boolean; reason?: string }>;
  /** Where logs go; tests capture them. */
  logStream?: NodeJS.WritableStream;
  logger?: FastifyBaseLogger;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export async function buildHttpServer(deps: HttpDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger
      ? { loggerInstance: deps.logger }
      : {
          logger: {
            ...loggerOptions(deps.config.logLevel),
            ...(deps.logStream ? { stream: deps.logStream } : {}),
          },
        }),
    bodyLimit: deps.config.bodyLimitBytes,
    // A caller's x-request-id is kept when it is sane, so logs join up across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req_${randomBase62(16)}`;
    },
    trustProxy: true,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are checked as sent (no coercion, unknown fields refused); query strings are converted.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.addSchema(ErrorResponse);
  installErrorHandling(app);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // An empty body with a JSON content type (common in SDKs for POST actions) means "no body".
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    parseJson(request, text, done);
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'paycenter',
        version: VERSION,
        description:
          'Self-hosted payment center for WeChat Pay and Alipay. Money is integer fen; ids are strings; ' +
          'errors are {"error":{"code","message"}}.',
      },
      servers: [{ url: deps.config.publicUrl }],
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'the app API key, sk_…' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'The process is up',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'The database is reachable and migrated',
        response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: Type.Ref('ErrorResponse') },
      },
    },
    async () => {
      const { ready, reason } = await deps.readiness();
      if (!ready) throw new AppError('not_ready', reason ?? 'not ready');
      return { status: 'ready' as const };
    },
  );

  await app.register(
    async (admin) => {
      admin.decorateRequest('merchant', null);
      admin.addHook('onRequest', adminAuth(deps.adminToken));
      await admin.register(appRoutes, { apps: deps.apps });
      await admin.register(channelRoutes, { channels: deps.channels });
      await admin.register(adminNotifyRoutes, { notify: deps.notify });
    },
    { prefix: '/admin-api' },
  );

  await app.register(
    async (merchant) => {
      merchant.decorateRequest('merchant', null);
      merchant.addHook('onRequest', merchantAuth(deps.apps));
      if (deps.config.rateLimitPerMinute > 0) {
        await merchant.register(rateLimit, {
          max: deps.config.rateLimitPerMinute,
          timeWindow: 60_000,
          hook: 'preHandler',
          keyGenerator: (request) => request.merchant?.keyId ?? request.ip,
          errorResponseBuilder: (_request, context) =>
            new AppError(
              'rate_limited',
              `rate limit of ${context.max} requests per minute for this API key exceeded; retry in ${context.after}`,
            ),
        });
      }
      await merchant.register(orderRoutes, { orders: deps.orders });
      await merchant.register(attemptRoutes, { submissions: deps.submissions, orders: deps.orders });
      await merchant.register(refundRoutes, { refunds: deps.refunds });
      await merchant.register(notifyRoutes, { notify: deps.notify });
    },
    { prefix: '/api/v1' },
  );

  await app.register(callbackRoutes, { callbacks: deps.callbacks });
  if (deps.live) await app.register(deps.live);
  if (deps.sandbox) await app.register(deps.sandbox, { prefix: '/__sandbox' });

  return app;
}
