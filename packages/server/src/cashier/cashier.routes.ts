import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../errors.js';
import type { PublicOrderService } from '../public/public-order.service.js';
import { choicesFor, deviceOf } from './choices.js';
import { pickLocale } from './i18n.js';
import { renderCashierPage, renderNotFoundPage } from './page.js';

const OPENID = /^[A-Za-z0-9_-]{1,128}$/;

/** Inline script and style carry this request's nonce; nothing else loads. */
function securityHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // The URL carries the order's client token: never send it on to the providers' pages.
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    vary: 'Accept-Language, User-Agent',
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "img-src 'self' data:",
      "connect-src 'self'",
      // Alipay page pay posts a form to the provider's gateway.
      'form-action https: http:',
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
  };
}

/**
 * `GET /cashier/:id?token=…[&openid=…]`: the hosted cashier page. Providers send the browser back here
 * after a page payment with their own parameters appended; those are ignored. A wrong id or token
 * gets the same 404 page.
 */
export const cashierRoutes: FastifyPluginAsyncTypebox<{
  orders: PublicOrderService;
  sandbox: boolean;
}> = async (app, { orders, sandbox }) => {
  app.get(
    '/cashier/:id',
    {
      schema: {
        tags: ['paying browser'],
        summary: 'The hosted cashier page',
        description:
          'Server-rendered HTML (zh-CN or English by Accept-Language) offering the app’s channels that fit the ' +
          'browser; live status by Server-Sent Events with polling as fallback. `openid`: the payer’s openid for ' +
          'wx_jsapi, from the merchant’s WeChat OAuth.',
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        querystring: Type.Object({
          token: Type.Optional(Type.String({ maxLength: 128 })),
          openid: Type.Optional(Type.String({ maxLength: 256 })),
        }),
      },
    },
    async (request, reply) => {
      const nonce = randomBytes(16).toString('base64');
      const locale = pickLocale(request.headers['accept-language']);
      reply.headers(securityHeaders(nonce));
      const { token, openid } = request.query;
      let facts: Awaited<ReturnType<PublicOrderService['cashier']>>;
      try {
        facts = await orders.cashier(request.params.id, token);
      } catch (error) {
        if (error instanceof AppError && error.code === 'not_found') {
          return reply.status(404).send(renderNotFoundPage(locale, nonce));
        }
        throw error;
      }
      const choices = choicesFor(deviceOf(request.headers['user-agent']), facts.channels);
      return reply.send(
        renderCashierPage({
          facts,
          token: token ?? '',
          locale,
          choices,
          openid: openid !== undefined && OPENID.test(openid) ? openid : undefined,
          sandbox,
          nonce,
        }),
      );
    },
  );
};
