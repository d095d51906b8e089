import type { KeyObject } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { SandboxContext } from '../provider.js';
import { cashierPage, errorPage, paidPage } from './cashier.js';
import type { AlipayMerchants } from './merchants.js';
import { AlipayError, type AlipayMethods, type GatewayCall, MSG, type Node } from './methods.js';
import {
  fenToYuan,
  parseBeijingTime,
  REQUEST_EXCLUDED,
  responseBody,
  responseKey,
  rsa2Verify,
  signContent,
} from './protocol.js';
import type { AlipayTrades } from './trades.js';

/**
 * `gateway.do` and the sandbox's stand-ins for what happens outside it (the buyer's cashier page, the
 * app handing its order string to Alipay). Mounted at `/__sandbox/alipay`.
 *
 * Every entry point authenticates the same way (research §B.2–B.3): query and form parameters merged,
 * the common parameters checked, the signature verified over the official string-to-sign with the
 * app public key registered for `app_id`.
 */

export interface GatewayOptions {
  /** How far a request `timestamp` may be from the sandbox clock. */
  timestampToleranceMs: number;
}

const PAGE_METHODS: Readonly<Record<string, 'page' | 'wap'>> = {
  'alipay.trade.page.pay': 'page',
  'alipay.trade.wap.pay': 'wap',
};
const APP_METHOD = 'alipay.trade.app.pay';
const HTML = 'text/html;charset=utf-8';

type Params = Record<string, string>;

/** Parameters from a query string or form body: decoded once; the first of repeated keys wins. */
function parseForm(text: string, into: Params): void {
  for (const [key, value] of new URLSearchParams(text)) {
    if (!Object.hasOwn(into, key)) into[key] = value;
  }
}

function requestParams(request: FastifyRequest): Params {
  const params: Params = Object.create(null);
  const query = request.url.indexOf('?');
  if (query >= 0) parseForm(request.url.slice(query + 1), params);
  if (typeof request.body === 'string') {
    // Form fields override same-named query parameters.
    const body: Params = Object.create(null);
    parseForm(request.body, body);
    Object.assign(params, body);
  }
  return { ...params };
}

/** A refused request: the error, where it goes in the response and whether it can be signed. */
interface Refusal {
  error: AlipayError;
  key: string;
  signer: KeyObject | undefined;
}

export function gatewayRoutes(
  context: SandboxContext,
  merchants: AlipayMerchants,
  trades: AlipayTrades,
  methods: AlipayMethods,
  options: GatewayOptions,
): FastifyPluginAsync {
  /** The common checks, in the gateway's order; a `GatewayCall` when everything holds. */
  function authenticate(params: Params, known: (method: string) => boolean): GatewayCall | Refusal {
    const method = params.method ?? '';
    const refuse = (
      code: AlipayError['code'],
      subCode: string,
      subMsg: string,
      signer?: KeyObject,
    ): Refusal => ({
      error: new AlipayError(code, subCode, subMsg),
      key: known(method) ? responseKey(method) : 'error_response',
      signer: known(method) ? signer : undefined,
    });
    if (!method) return refuse('40001', 'isv.missing-method', '缺少方法名参数');
    if (!known(method)) return refuse('40002', 'isv.invalid-method', '不存在的方法名');
    const appId = params.app_id ?? '';
    // Without a known app there is no key to sign with: these answers go out unsigned.
    if (!appId) return refuse('40001', 'isv.missing-app-id', '缺少AppID参数');
    const merchant = merchants.get(appId);
    if (!merchant) return refuse('40002', 'isv.invalid-app-id', '无效的AppID参数');
    const signer = merchant.alipayPrivateKey;
    if (params.charset && params.charset.toLowerCase() !== 'utf-8') {
      return refuse('40002', 'isv.invalid-charset', '字符集错误 (the sandbox speaks utf-8)', signer);
    }
    if (!params.sign_type) return refuse('40001', 'isv.missing-signature-type', '缺少签名类型参数', signer);
    if (params.sign_type !== 'RSA2')
      return refuse('40002', 'isv.invalid-signature-type', '无效的签名类型参数', signer);
    if (!params.sign) return refuse('40001', 'isv.missing-signature', '缺少签名参数', signer);
    if (!params.timestamp) return refuse('40001', 'isv.missing-timestamp', '缺少时间戳参数', signer);
    const now = context.now();
    const timestamp = parseBeijingTime(params.timestamp);
    if (!timestamp || Math.abs(timestamp.getTime() - now.getTime()) > options.timestampToleranceMs) {
      return refuse('40002', 'isv.invalid-timestamp', '非法的时间戳参数', signer);
    }
    if (!params.version) return refuse('40001', 'isv.missing-version', '缺少版本参数', signer);
    if (params.version !== '1.0') return refuse('40002', 'isv.invalid-version', '无效的版本参数', signer);
    const content = signContent(params, REQUEST_EXCLUDED);
    if (!rsa2Verify(content, params.sign, merchant.appPublicKey)) {
      return refuse(
        '40002',
        'isv.invalid-signature',
        `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content}`,
        signer,
      );
    }
    let biz: Record<string, unknown> = {};
    if (params.biz_content) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(params.biz_content);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return refuse('40002', 'isv.invalid-parameter', '参数无效: biz_content is not a JSON object', signer);
      }
      biz = parsed as Record<string, unknown>;
    }
    return { merchant, method, params, biz, now };
  }

  /** The error node; business failures carry the request's identifying fields (research §B.4). */
  function errorNode(error: AlipayError, biz: Readonly<Record<string, unknown>>): Node {
    const node: Node = {
      code: error.code,
      msg: MSG[error.code],
      sub_code: error.subCode,
      sub_msg: error.subMsg,
    };
    if (error.code === '40004') {
      for (const key of ['out_trade_no', 'trade_no']) {
        if (typeof biz[key] === 'string' && biz[key] !== '') node[key] = biz[key];
      }
    }
    return node;
  }

  function sendJson(reply: FastifyReply, text: string): FastifyReply {
    return reply.status(200).header('content-type', HTML).send(text);
  }

  function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
    return reply.status(status).header('content-type', HTML).header('cache-control', 'no-store').send(html);
  }

  function cashier(reply: FastifyReply, tradeNo: string): FastifyReply {
    const payment = trades.byTradeNo(tradeNo);
    if (!payment) return sendHtml(reply, 404, errorPage('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在'));
    return sendHtml(
      reply,
      200,
      cashierPage(payment, trades.status(payment), {
        pay: `${context.baseUrl()}/alipay/cashier/${encodeURIComponent(payment.tradeNo)}/pay`,
        quitUrl: trades.trade(payment).quitUrl,
      }),
    );
  }

  async function gateway(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const params = requestParams(request);
    const pageProduct = params.method ? PAGE_METHODS[params.method] : undefined;
    const result = authenticate(params, (method) => method in methods.api || method in PAGE_METHODS);

    if (pageProduct) {
      // The buyer's browser arrived with the merchant's signed form or URL: show the cashier.
      if (!('merchant' in result)) {
        const { error } = result;
        return sendHtml(reply, 200, errorPage(error.code, error.subCode, error.subMsg));
      }
      try {
        const payment = methods.openCashier(result, pageProduct);
        return cashier(reply, payment.tradeNo);
      } catch (error) {
        if (!(error instanceof AlipayError)) throw error;
        return sendHtml(reply, 200, errorPage(error.code, error.subCode, error.subMsg));
      }
    }

    if (!('merchant' in result)) {
      return sendJson(reply, responseBody(result.key, errorNode(result.error, {}), result.signer));
    }
    const call = result;
    const key = responseKey(call.method);
    const signer = call.merchant.alipayPrivateKey;
    const handler = methods.api[call.method];
    let node: Node;
    try {
      if (!handler) throw new Error(`no handler for ${call.method}`);
      node = handler(call);
    } catch (error) {
      if (error instanceof AlipayError) {
        node = errorNode(error, call.biz);
      } else {
        request.log.error({ err: error }, 'Alipay sandbox: %s failed', call.method);
        node = { code: '20000', msg: MSG['20000'], sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' };
      }
    }
    return sendJson(reply, responseBody(key, node, signer));
  }

  return async (app) => {
    // Alipay speaks application/x-www-form-urlencoded: keep the raw text and decode it once ourselves.
    if (app.hasContentTypeParser('application/x-www-form-urlencoded')) {
      app.removeContentTypeParser('application/x-www-form-urlencoded');
    }
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, done) => done(null, body),
    );

    app.get('/gateway.do', gateway);
    app.post('/gateway.do', gateway);

    app.get<{ Params: { tradeNo: string } }>('/cashier/:tradeNo', async (request, reply) =>
      cashier(reply, request.params.tradeNo),
    );

    /** The "Pay" button: the trade is paid, then the browser goes back to return_url with signed parameters. */
    app.post<{ Params: { tradeNo: string } }>('/cashier/:tradeNo/pay', async (request, reply) => {
      const payment = trades.byTradeNo(request.params.tradeNo);
      if (!payment) return sendHtml(reply, 404, errorPage('40004', 'ACQ.TRADE_NOT_EXIST', '交易不存在'));
      if (payment.status !== 'waiting') {
        return sendHtml(
          reply,
          409,
          errorPage('40004', 'ACQ.TRADE_STATUS_ERROR', `交易状态不合法: ${trades.status(payment)}`),
        );
      }
      trades.pay(payment);
      const returnUrl = trades.trade(payment).returnUrl;
      if (!returnUrl) return sendHtml(reply, 200, paidPage(payment));
      let target: URL;
      try {
        target = new URL(returnUrl);
      } catch {
        return sendHtml(reply, 200, paidPage(payment));
      }
      for (const [name, value] of Object.entries(trades.syncReturn(payment)))
        target.searchParams.set(name, value);
      return reply.redirect(target.toString(), 302);
    });

    /**
     * Sandbox only: the mobile app hands the signed order string of `alipay.trade.app.pay` to the
     * Alipay app. POST the order string as the body (text/plain or form); the trade is created and
     * waits for a control pay or close.
     */
    app.post('/app-pay', async (request, reply) => {
      if (typeof request.body !== 'string' || request.body === '') {
        return reply.status(400).send({
          code: '40001',
          msg: MSG['40001'],
          sub_code: 'isv.missing-order-string',
          sub_msg: 'POST the order string of alipay.trade.app.pay as the body (text/plain)',
        });
      }
      const params: Params = Object.create(null);
      parseForm(request.body, params);
      const result = authenticate({ ...params }, (method) => method === APP_METHOD);
      try {
        if (!('merchant' in result)) throw result.error;
        const payment = methods.openApp(result);
        return reply.status(200).send({
          code: '10000',
          msg: MSG['10000'],
          out_trade_no: payment.outTradeNo,
          trade_no: payment.tradeNo,
          trade_status: trades.status(payment),
          total_amount: fenToYuan(payment.amount),
        });
      } catch (error) {
        if (!(error instanceof AlipayError)) throw error;
        return reply.status(400).send(errorNode(error, 'merchant' in result ? result.biz : {}));
      }
    });
  };
}
