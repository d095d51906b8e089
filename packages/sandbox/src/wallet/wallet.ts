import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Ledger, SandboxPayment } from '../ledger.js';

/** What the wallet needs from the sandbox around it. */
export interface WalletHost {
  readonly ledger: Ledger;
  /** The payer pays (throws a SandboxError when the payment cannot be paid). */
  pay(outTradeNo: string): void;
  now(): Date;
}

const escapeHtml = (value: string): string =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const yuan = (fen: number) => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

/**
 * Where "back" may go after paying: a path on this same site only (the cashier that sent the payer),
 * never another site — the wallet must not become an open redirect.
 */
export function safeReturnPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  return /^[\x21-\x7e]+$/.test(value) ? value : undefined;
}

const BRANDS = {
  wechatpay: { name: '微信支付 WeChat Pay', color: '#07c160', dark: '#06ad56' },
  alipay: { name: '支付宝 Alipay', color: '#1677ff', dark: '#0958d9' },
} as const;

function css(color: string, dark: string): string {
  return `*{box-sizing:border-box}body{margin:0;min-height:100vh;background:#eef0f3;color:#1f2937;
font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
display:flex;justify-content:center;padding:0}
.phone{width:100%;max-width:420px;min-height:100vh;background:#f7f8fa;display:flex;flex-direction:column}
.bar{background:${color};color:#fff;padding:14px 18px;display:flex;justify-content:space-between;align-items:center}
.bar b{font-size:16px}.bar span{font-size:12px;opacity:.9;background:rgba(255,255,255,.2);border-radius:999px;padding:2px 10px}
.sheet{margin:16px;background:#fff;border-radius:16px;padding:24px 20px;text-align:center;
box-shadow:0 1px 3px rgba(0,0,0,.05)}
.to{color:#6b7280;font-size:14px;margin:0}.subject{margin:4px 0 0;font-weight:600;overflow-wrap:anywhere}
.amount{font-size:40px;font-weight:700;margin:14px 0 6px;font-variant-numeric:tabular-nums}
.amount small{font-size:24px;margin-right:2px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;text-align:left;font-size:13px;margin:16px 0 0;
padding-top:14px;border-top:1px solid #f0f1f3}dt{color:#9ca3af}dd{margin:0;word-break:break-all}
button,.btn{display:block;width:100%;border:0;border-radius:12px;padding:14px;font:inherit;font-size:17px;
font-weight:600;background:${color};color:#fff;cursor:pointer;text-decoration:none;text-align:center}
button:hover,.btn:hover{background:${dark}}.btn.secondary{background:#fff;color:#374151;border:1px solid #e5e7eb}
.actions{margin:0 16px;display:grid;gap:10px}
.state{font-size:18px;font-weight:700;margin:6px 0 0}.state.paid{color:#15803d}.state.closed{color:#6b7280}
.error{color:#b91c1c;margin:12px 16px;text-align:center}
.note{color:#9ca3af;font-size:12px;text-align:center;margin:auto 16px 20px;padding-top:20px}
ul{list-style:none;margin:0;padding:0}li a{display:flex;justify-content:space-between;gap:8px;padding:12px 4px;
border-bottom:1px solid #f0f1f3;color:inherit;text-decoration:none}li small{color:#6b7280}`;
}

function page(
  title: string,
  brand: { name: string; color: string; dark: string },
  body: string,
  refreshTo?: string,
): string {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
${refreshTo ? `<meta http-equiv="refresh" content="1;url=${escapeHtml(refreshTo)}">` : ''}
<title>${escapeHtml(title)}</title><style>${css(brand.color, brand.dark)}</style></head><body><div class="phone">
<div class="bar"><b>${escapeHtml(brand.name)}</b><span>沙箱钱包 Sandbox wallet</span></div>
${body}
<p class="note">paycenter sandbox · no real money moves. Paying here is what a payer's phone does: the
simulated provider takes the money and sends its signed callback to the merchant.</p>
</div></body></html>`;
}

function send(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send(html);
}

function paymentPage(
  host: WalletHost,
  payment: SandboxPayment,
  back: string | undefined,
  error?: string,
): string {
  const brand = BRANDS[payment.provider];
  const expired = payment.status === 'waiting' && payment.expireAt !== null && payment.expireAt <= host.now();
  const status = expired ? 'expired' : payment.status;
  const self = `${encodeURIComponent(payment.outTradeNo)}`;
  const backQuery = back ? `?return=${encodeURIComponent(back)}` : '';
  const stateText =
    status === 'paid'
      ? '✓ 已支付 Paid'
      : status === 'closed'
        ? '已关闭 Closed'
        : status === 'expired'
          ? '已过期 Expired'
          : '待支付 Waiting for payment';
  const actions =
    status === 'waiting'
      ? `<form method="post" action="${self}/pay${backQuery}"><button type="submit" id="pay">确认付款 Pay ¥${yuan(payment.amount)}</button></form>`
      : '';
  const backLink = back
    ? `<a class="btn${status === 'waiting' ? ' secondary' : ''}" id="back" href="${escapeHtml(back)}">${
        status === 'paid' ? '返回商户 Back to the merchant' : '返回 Back'
      }</a>`
    : '';
  return page(
    `¥${yuan(payment.amount)} · ${payment.subject}`,
    brand,
    `<div class="sheet">
<p class="to">付款给 Pay to · ${escapeHtml(payment.merchantId)}</p>
<p class="subject" id="subject">${escapeHtml(payment.subject)}</p>
<p class="amount" id="amount"><small>¥</small>${yuan(payment.amount)}</p>
<p class="state ${escapeHtml(status)}" id="status" data-status="${escapeHtml(status)}">${stateText}</p>
<dl><dt>out_trade_no</dt><dd id="out-trade-no">${escapeHtml(payment.outTradeNo)}</dd>
<dt>${payment.provider === 'wechatpay' ? 'transaction_id' : 'trade_no'}</dt><dd>${escapeHtml(payment.tradeNo)}</dd>
<dt>product</dt><dd>${escapeHtml(payment.product)}</dd>
${payment.expireAt ? `<dt>expires</dt><dd>${escapeHtml(payment.expireAt.toISOString())}</dd>` : ''}</dl>
</div>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<div class="actions">${actions}${backLink}</div>`,
    status === 'paid' && back ? back : undefined,
  );
}

/**
 * The sandbox wallet: `GET /wallet/:outTradeNo` shows a payment the way a payer's phone would, with a
 * Pay button that pays it through the sandbox (the simulated provider then sends its signed callback).
 * `?return=/path` is where "back" goes afterwards (the cashier); a paid payment returns there after a
 * second. `GET /wallet` lists the payments waiting.
 */
export function walletRoutes(host: WalletHost): FastifyPluginAsync {
  return async (app) => {
    // The Pay form posts url-encoded; it carries nothing the wallet reads.
    if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
      app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
        done(null, body),
      );
    }

    app.get('/wallet', async (_request, reply) => {
      const payments = host.ledger
        .all()
        .filter((p) => p.status === 'waiting')
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
        .slice(0, 50);
      const items = payments
        .map(
          (p) =>
            `<li><a href="wallet/${encodeURIComponent(p.outTradeNo)}"><span>${escapeHtml(p.subject)}<br><small>${escapeHtml(p.provider)} · ${escapeHtml(p.outTradeNo)}</small></span><b>¥${yuan(p.amount)}</b></a></li>`,
        )
        .join('');
      return send(
        reply,
        200,
        page(
          'Sandbox wallet',
          { name: 'paycenter 沙箱钱包', color: '#374151', dark: '#1f2937' },
          `<div class="sheet"><p class="subject">待支付 Waiting payments</p>${
            items
              ? `<ul id="payments">${items}</ul>`
              : '<p class="to" id="no-payments">None. Submit an order first.</p>'
          }</div>`,
        ),
      );
    });

    app.get<{ Params: { outTradeNo: string }; Querystring: { return?: string } }>(
      '/wallet/:outTradeNo',
      async (request, reply) => {
        const payment = host.ledger.find(request.params.outTradeNo);
        const back = safeReturnPath(request.query.return);
        if (!payment) {
          return send(
            reply,
            404,
            page(
              'Sandbox wallet',
              { name: 'paycenter 沙箱钱包', color: '#374151', dark: '#1f2937' },
              `<div class="sheet"><p class="subject" id="not-found">No payment ${escapeHtml(request.params.outTradeNo)} in the sandbox</p>
<p class="to">Alipay page payments appear once the browser has opened the Alipay cashier.</p></div>`,
            ),
          );
        }
        return send(reply, 200, paymentPage(host, payment, back));
      },
    );

    app.post<{ Params: { outTradeNo: string }; Querystring: { return?: string } }>(
      '/wallet/:outTradeNo/pay',
      async (request, reply) => {
        const payment = host.ledger.find(request.params.outTradeNo);
        const back = safeReturnPath(request.query.return);
        if (!payment) return reply.redirect(`../${encodeURIComponent(request.params.outTradeNo)}`, 303);
        try {
          host.pay(payment.outTradeNo);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          return send(reply, 409, paymentPage(host, payment, back, message));
        }
        // Post/redirect/get: a reload does not pay twice.
        const target = `../${encodeURIComponent(payment.outTradeNo)}${back ? `?return=${encodeURIComponent(back)}` : ''}`;
        return reply.redirect(target, 303);
      },
    );
  };
}
