import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { SandboxError } from '../provider.js';
import {
  parseAuthorization,
  randomHexUpper,
  requestMessage,
  rsaVerify,
  TIMESTAMP_WINDOW_SECONDS,
  unixSeconds,
} from './crypto.js';
import type { WechatPayService } from './service.js';
import { details, type Merchant, TRADE_TYPE_BY_PATH, tradeState } from './state.js';
import {
  invalidRequest,
  OUT_REFUND_NO,
  OUT_TRADE_NO,
  paramError,
  parsePrepay,
  parseRefund,
  WechatPayError,
} from './validate.js';

/**
 * The WeChat Pay API v3 over HTTP, mounted at `/__sandbox/wechatpay`: a merchant's `baseUrl` is
 * `<sandbox>/wechatpay` and its paths are `/v3/…`.
 *
 * Which URL the request signature covers: line 2 of the string-to-sign is the path and query exactly as
 * they go on the wire, relative to the host (§A.3). With a base URL that has a path of its own, a client
 * therefore signs the full path, `/__sandbox/wechatpay/v3/…?…`, which is also what wechatpay-axios-plugin
 * does (`new URL(axios.getUri(config)).pathname`) and what paycenter's client does (`canonicalUrl`). Real
 * WeChat sees the full path too, so the simulator verifies against the raw `request.url`, prefix included
 * and nothing decoded or re-encoded. (A proxy that rewrites the path in front of the sandbox would break
 * the signatures, as it would in front of WeChat.)
 */
export function wechatPayRoutes(service: WechatPayService): FastifyPluginAsync {
  return async (app) => {
    /** The merchant whose platform key signs the answer, known as soon as the Authorization names it. */
    const signers = new WeakMap<FastifyRequest, Merchant>();
    const verified = new WeakMap<FastifyRequest, { merchant: Merchant; body: unknown }>();

    // Signatures cover the raw bytes: keep every body as a Buffer, whatever its type; parse JSON ourselves.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    function send(reply: FastifyReply, merchant: Merchant | undefined, status: number, payload?: unknown) {
      const body = payload === undefined ? '' : JSON.stringify(payload);
      reply.code(status).header('Request-ID', `${randomHexUpper(24)}-${unixSeconds(service.now())}`);
      // Every answer to an identified merchant is signed, 204 and business errors included (§A.6).
      if (merchant) reply.headers(service.signatureHeaders(merchant, body));
      if (body === '') return reply.send();
      return reply.header('Content-Type', 'application/json; charset=utf-8').send(body);
    }

    const signError = (message: string) => new WechatPayError(401, 'SIGN_ERROR', message);

    /** §A.3 "simulator behaviour on receipt", then the body's JSON and the mchid consistency. */
    function authenticate(request: FastifyRequest): { merchant: Merchant; body: unknown } {
      if (!request.headers.accept || !request.headers['user-agent']) {
        throw invalidRequest('Http头缺少Accept或User-Agent (the Accept or User-Agent header is missing)');
      }
      const header = request.headers.authorization;
      if (!header) throw signError('缺少Authorization请求头 (the Authorization header is missing)');
      const auth = parseAuthorization(header);
      if (!auth) {
        throw invalidRequest(
          'Authorization头格式错误 (expected WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…")',
        );
      }
      const merchant = service.merchants.get(auth.mchid);
      if (!merchant) throw signError('商户号不存在 (no such mchid)');
      signers.set(request, merchant);
      if (auth.serialNo.toUpperCase() !== merchant.serialNo) {
        throw signError('商户证书序列号有误 (serial_no does not name this merchant’s key)');
      }
      const now = unixSeconds(service.now());
      if (
        !/^\d{1,10}$/.test(auth.timestamp) ||
        Math.abs(now - Number(auth.timestamp)) > TIMESTAMP_WINDOW_SECONDS
      ) {
        throw signError('请求时间戳超出允许范围 (timestamp is not within 300 s of the server clock)');
      }
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const message = requestMessage(request.method, request.url, auth.timestamp, auth.nonce, raw);
      if (!rsaVerify(message, auth.signature, merchant.merchantPublicKey)) {
        throw signError('签名错误 (the signature does not verify)');
      }

      let body: unknown;
      if (raw.length > 0) {
        const type = request.headers['content-type'];
        if (!type || !/^application\/json\s*(;|$)/i.test(type)) {
          throw invalidRequest('Content-Type must be application/json');
        }
        const text = raw.toString('utf8');
        if (/[\u{10000}-\u{10FFFF}]/u.test(text)) {
          throw paramError('/', 'only 1- to 3-byte UTF-8 characters are accepted (no emoji)');
        }
        try {
          body = JSON.parse(text);
        } catch {
          throw paramError('/', 'the body is not valid JSON');
        }
      }
      const bodyMchid = (body as { mchid?: unknown } | undefined)?.mchid;
      const queryMchid = (request.query as Record<string, unknown>).mchid;
      for (const mchid of [bodyMchid, queryMchid]) {
        if (mchid !== undefined && mchid !== auth.mchid) {
          throw invalidRequest(
            'mchid不匹配 (the mchid in the request differs from the one in Authorization)',
          );
        }
      }
      return { merchant, body };
    }

    function caller(request: FastifyRequest): { merchant: Merchant; body: unknown } {
      const found = verified.get(request);
      if (!found) throw new Error('request not authenticated');
      return found;
    }

    function requireQueryMchid(request: FastifyRequest): void {
      const mchid = (request.query as Record<string, unknown>).mchid;
      if (typeof mchid !== 'string' || mchid === '')
        throw paramError('mchid', 'required', undefined, 'query');
    }

    function checkOutTradeNo(value: string): void {
      if (!OUT_TRADE_NO.test(value))
        throw paramError('out_trade_no', 'has an invalid format', value, 'uri_template');
    }

    app.setErrorHandler((error, request, reply) => {
      const merchant = signers.get(request);
      if (error instanceof WechatPayError) return send(reply, merchant, error.status, error.toJSON());
      if (error instanceof SandboxError) {
        return send(reply, merchant, error.status, { code: error.code, message: error.message });
      }
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      const message = error instanceof Error ? error.message : String(error);
      if (status < 500) return send(reply, merchant, status, { code: 'INVALID_REQUEST', message });
      request.log.error({ err: error }, 'wechatpay simulator failed');
      return send(reply, merchant, 500, { code: 'SYSTEM_ERROR', message: '系统错误 (system error)' });
    });

    app.setNotFoundHandler((request, reply) =>
      send(reply, undefined, 404, {
        code: 'NOT_FOUND',
        message: `no such API: ${request.method} ${request.url}`,
      }),
    );

    app.addHook('onClose', async () => service.stop());

    await app.register(async (v3) => {
      v3.addHook('preHandler', async (request) => {
        verified.set(request, authenticate(request));
      });

      for (const [segment, tradeType] of Object.entries(TRADE_TYPE_BY_PATH)) {
        v3.post(`/v3/pay/transactions/${segment}`, async (request, reply) => {
          const { merchant, body } = caller(request);
          const prepay = parsePrepay(body, tradeType);
          return send(reply, merchant, 200, service.prepay(merchant, tradeType, prepay, body));
        });
      }

      v3.get<{ Params: { outTradeNo: string } }>(
        '/v3/pay/transactions/out-trade-no/:outTradeNo',
        async (request, reply) => {
          const { merchant } = caller(request);
          requireQueryMchid(request);
          checkOutTradeNo(request.params.outTradeNo);
          return send(reply, merchant, 200, service.queryByOutTradeNo(merchant, request.params.outTradeNo));
        },
      );

      v3.get<{ Params: { transactionId: string } }>(
        '/v3/pay/transactions/id/:transactionId',
        async (request, reply) => {
          const { merchant } = caller(request);
          requireQueryMchid(request);
          return send(
            reply,
            merchant,
            200,
            service.queryByTransactionId(merchant, request.params.transactionId),
          );
        },
      );

      v3.post<{ Params: { outTradeNo: string } }>(
        '/v3/pay/transactions/out-trade-no/:outTradeNo/close',
        async (request, reply) => {
          const { merchant, body } = caller(request);
          if ((body as { mchid?: unknown } | undefined)?.mchid === undefined)
            throw paramError('/mchid', 'required');
          checkOutTradeNo(request.params.outTradeNo);
          service.closeOrder(merchant, request.params.outTradeNo);
          return send(reply, merchant, 204);
        },
      );

      v3.post('/v3/refund/domestic/refunds', async (request, reply) => {
        const { merchant, body } = caller(request);
        return send(reply, merchant, 200, service.refund(merchant, parseRefund(body)));
      });

      v3.get<{ Params: { outRefundNo: string } }>(
        '/v3/refund/domestic/refunds/:outRefundNo',
        async (request, reply) => {
          const { merchant } = caller(request);
          const { outRefundNo } = request.params;
          if (!OUT_REFUND_NO.test(outRefundNo)) {
            throw paramError('out_refund_no', 'has an invalid format', outRefundNo, 'uri_template');
          }
          return send(reply, merchant, 200, service.queryRefund(merchant, outRefundNo));
        },
      );
    });

    // The page an h5_url opens: in real life WeChat's cashier, which hands over to the WeChat app.
    app.get<{ Querystring: { prepay_id?: string; redirect_url?: string } }>(
      '/h5pay',
      async (request, reply) => {
        const { prepay_id: prepayId = '', redirect_url: redirectUrl } = request.query;
        return renderH5(reply, service, prepayId, redirectUrl);
      },
    );

    app.post('/h5pay', async (request, reply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : '';
      const form = new URLSearchParams(raw);
      const prepayId = form.get('prepay_id') ?? '';
      const redirectUrl = form.get('redirect_url') ?? undefined;
      const payment = service.paymentByPrepayId(prepayId);
      if (!payment) return renderH5(reply, service, prepayId, redirectUrl);
      let failure: string | undefined;
      try {
        service.pay(payment);
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      }
      if (!failure && redirectUrl && /^https?:\/\//i.test(redirectUrl))
        return reply.redirect(redirectUrl, 303);
      return renderH5(reply, service, prepayId, redirectUrl, failure);
    });
  };
}

const escapeHtml = (value: string): string =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

function renderH5(
  reply: FastifyReply,
  service: WechatPayService,
  prepayId: string,
  redirectUrl: string | undefined,
  failure?: string,
) {
  const payment = service.paymentByPrepayId(prepayId);
  reply.header('Content-Type', 'text/html; charset=utf-8').header('Cache-Control', 'no-store');
  const page = (title: string, inner: string) =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;text-align:center}` +
    `.amount{font-size:2.4rem;margin:.5rem 0}button{background:#07c160;color:#fff;border:0;border-radius:.4rem;padding:.8rem 2.4rem;font-size:1.1rem}` +
    `.note{color:#888;font-size:.85rem}</style></head><body>${inner}<p class="note">paycenter sandbox · simulated WeChat Pay H5</p></body></html>`;
  if (!payment) {
    reply.code(404);
    return reply.send(page('WeChat Pay', `<h1>Unknown prepay_id</h1><p>${escapeHtml(prepayId)}</p>`));
  }
  const state = tradeState(payment);
  const yuan = (payment.amount / 100).toFixed(2);
  const parts = [
    `<p>${escapeHtml(payment.subject)}</p>`,
    `<p class="amount">¥${yuan}</p>`,
    `<p class="note">${escapeHtml(details(payment).appid)} · ${escapeHtml(payment.outTradeNo)}</p>`,
  ];
  if (failure) parts.push(`<p><strong>${escapeHtml(failure)}</strong></p>`);
  if (state === 'NOTPAY') {
    parts.push(
      `<form method="post"><input type="hidden" name="prepay_id" value="${escapeHtml(prepayId)}">` +
        (redirectUrl ? `<input type="hidden" name="redirect_url" value="${escapeHtml(redirectUrl)}">` : '') +
        `<button type="submit">Pay ¥${yuan}</button></form>`,
    );
  } else {
    parts.push(`<p><strong>${state === 'CLOSED' ? 'This order is closed.' : 'Paid.'}</strong></p>`);
    if (state !== 'CLOSED' && redirectUrl && /^https?:\/\//i.test(redirectUrl)) {
      parts.push(`<p><a href="${escapeHtml(redirectUrl)}">Back to the merchant</a></p>`);
    }
  }
  return reply.send(page('WeChat Pay', parts.join('')));
}
