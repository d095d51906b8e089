import type { FastifyPluginAsync } from 'fastify';
import { type Verdict, verifyReturn, verifyWebhook } from './verify.js';

/** How the demo merchant learns the app's webhook secret (`whsec_…`). */
export type SecretSource = () => string | undefined;

export interface DemoMerchantOptions {
  /** The demo app's webhook secret; read on every request, so it may appear after start-up. */
  webhookSecret?: SecretSource;
}

/** One webhook as the demo merchant received it. */
export interface ReceivedWebhook {
  /** The `webhook-id` header. */
  id: string | null;
  type: string | null;
  /** `data.id` of the event: the paycenter order (or refund) id. */
  objectId: string | null;
  receivedAt: string;
  verified: boolean;
  /** Why it did not verify. */
  reason: string | null;
  body: unknown;
}

const HISTORY = 200;
const BODY_LIMIT = 256 * 1024;

const escapeHtml = (value: string): string =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const CSS = `*{box-sizing:border-box}body{margin:0;background:#f6f7f9;color:#1f2937;font:15px/1.5 -apple-system,
BlinkMacSystemFont,"Segoe UI","PingFang SC","Microsoft YaHei",system-ui,sans-serif}
.bar{background:#111827;color:#fff;padding:12px 20px;display:flex;justify-content:space-between;align-items:center}
.bar b{font-size:16px}.bar small{color:#9ca3af}
main{max-width:720px;margin:24px auto;padding:0 14px}
.card{background:#fff;border-radius:16px;box-shadow:0 1px 3px rgba(0,0,0,.06),0 8px 24px rgba(0,0,0,.05);padding:24px;
margin-bottom:16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:15px;margin:0 0 10px;color:#4b5563}
.ok{color:#15803d}.bad{color:#b91c1c}.muted{color:#6b7280;font-size:13px}
.pill{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600}
.pill.ok{background:#dcfce7}.pill.bad{background:#fee2e2}
dl{display:grid;grid-template-columns:max-content 1fr;gap:6px 16px;margin:14px 0 0}dt{color:#6b7280}
dd{margin:0;word-break:break-all;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse;font-size:13px}th,td{text-align:left;padding:8px 6px;border-bottom:1px solid #eef0f3;
vertical-align:top;word-break:break-all}th{color:#6b7280;font-weight:500}a{color:#2563eb}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>
<div class="bar"><b>Demo shop</b><small>paycenter sandbox · demo merchant</small></div>
<main>${body}</main></body></html>`;
}

function one(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The demo merchant the sandbox hosts, so a newcomer sees both halves of a payment: where the paying
 * browser lands (`GET /merchant/return`, which checks the signed return URL) and what the merchant's
 * backend hears (`POST /merchant/webhooks`, which checks the Standard Webhooks signature; `GET` lists
 * what arrived and whether each verified). It knows one secret: the demo app's.
 */
export class DemoMerchant {
  readonly #now: () => Date;
  #secret: SecretSource;
  readonly webhooks: ReceivedWebhook[] = [];

  constructor(options: DemoMerchantOptions, now: () => Date) {
    this.#secret = options.webhookSecret ?? (() => undefined);
    this.#now = now;
  }

  /** Sets (or replaces) where the webhook secret comes from: a secret, or a function read per request. */
  useWebhookSecret(secret: string | SecretSource): void {
    this.#secret = typeof secret === 'string' ? () => secret : secret;
  }

  /** Checks and records one webhook; the answer the merchant gives paycenter follows from it. */
  receive(headers: Record<string, string | string[] | undefined>, rawBody: string): ReceivedWebhook {
    const secret = this.#secret();
    const verdict: Verdict = secret
      ? verifyWebhook(secret, headers, rawBody, this.#now())
      : { verified: false, reason: 'the demo merchant has no webhook secret configured' };
    let body: unknown = rawBody;
    try {
      body = JSON.parse(rawBody);
    } catch {
      // Kept as text.
    }
    const event = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const data =
      typeof event.data === 'object' && event.data !== null ? (event.data as Record<string, unknown>) : {};
    const id = headers['webhook-id'];
    const received: ReceivedWebhook = {
      id: (Array.isArray(id) ? id[0] : id) ?? null,
      type: one(event.type) ?? null,
      objectId: one(data.id) ?? null,
      receivedAt: this.#now().toISOString(),
      verified: verdict.verified,
      reason: verdict.verified ? null : verdict.reason,
      body,
    };
    this.webhooks.push(received);
    if (this.webhooks.length > HISTORY) this.webhooks.splice(0, this.webhooks.length - HISTORY);
    return received;
  }

  checkReturn(query: Record<string, string | undefined>): Verdict {
    const secret = this.#secret();
    if (!secret) return { verified: false, reason: 'the demo merchant has no webhook secret configured' };
    return verifyReturn(secret, query, this.#now());
  }

  /** Routes under the sandbox prefix: `/merchant/return`, `/merchant/webhooks`. */
  readonly routes: FastifyPluginAsync = async (app) => {
    // The signature covers the exact bytes: keep JSON bodies as text here.
    if (app.hasContentTypeParser('application/json')) app.removeContentTypeParser('application/json');
    app.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: BODY_LIMIT },
      (_request, body, done) => done(null, body),
    );

    app.post('/merchant/webhooks', { bodyLimit: BODY_LIMIT }, async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : '';
      const received = this.receive(request.headers, raw);
      if (received.verified) return reply.status(200).send({ code: 'SUCCESS' });
      const status = this.#secret() ? 401 : 503;
      return reply.status(status).send({ code: 'FAIL', message: received.reason });
    });

    app.get<{ Querystring: { format?: string } }>('/merchant/webhooks', async (request, reply) => {
      const list = [...this.webhooks].reverse();
      const wantsJson =
        request.query.format === 'json' || /application\/json/.test(request.headers.accept ?? '');
      if (wantsJson) return reply.send({ data: list });
      const rows = list
        .map(
          (w) =>
            `<tr data-webhook-id="${escapeHtml(w.id ?? '')}" data-verified="${w.verified}"><td>${escapeHtml(w.receivedAt)}</td>` +
            `<td>${escapeHtml(w.type ?? '—')}</td><td>${escapeHtml(w.objectId ?? '—')}</td>` +
            `<td>${w.verified ? '<span class="pill ok">✓ verified</span>' : `<span class="pill bad">✗ ${escapeHtml(w.reason ?? '')}</span>`}</td>` +
            `<td class="muted">${escapeHtml(w.id ?? '')}</td></tr>`,
        )
        .join('');
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          page(
            'Demo shop — webhooks',
            `<div class="card"><h1>Webhooks received</h1><p class="muted">What the demo merchant's backend heard from
paycenter (newest first), each checked against the app's webhook secret (Standard Webhooks). JSON: <a href="?format=json">?format=json</a>.</p>
${
  list.length === 0
    ? '<p id="no-webhooks">None yet. paycenter delivers a webhook when an order is paid or closed.</p>'
    : `<table id="webhooks"><thead><tr><th>received</th><th>type</th><th>order</th><th>signature</th><th>webhook-id</th></tr></thead><tbody>${rows}</tbody></table>`
}</div>`,
          ),
        );
    });

    app.get<{ Querystring: Record<string, string | undefined> }>(
      '/merchant/return',
      async (request, reply) => {
        const query = request.query;
        const verdict = this.checkReturn(query);
        const status = query.status ?? '';
        const heading = !verdict.verified
          ? 'We could not verify this link'
          : status === 'paid'
            ? 'Thank you — your payment went through'
            : status === 'closed'
              ? 'Your order was closed'
              : `Your order is ${status}`;
        const forOrder = this.webhooks
          .filter((w) => w.objectId !== null && w.objectId === query.orderId)
          .reverse();
        const webhookList =
          forOrder.length === 0
            ? '<p class="muted" id="order-webhooks-none">No webhook for this order yet: it travels separately, from paycenter to the merchant’s backend. Refresh in a moment.</p>'
            : `<ul id="order-webhooks">${forOrder
                .map(
                  (w) =>
                    `<li>${escapeHtml(w.type ?? '—')} · ${w.verified ? '<span class="ok">✓ verified</span>' : `<span class="bad">✗ ${escapeHtml(w.reason ?? '')}</span>`} · <span class="muted">${escapeHtml(w.receivedAt)}</span></li>`,
                )
                .join('')}</ul>`;
        const ts = Number(query.ts);
        return reply
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(
            page(
              'Demo shop — order',
              `<div class="card"><h1 id="heading" class="${verdict.verified ? 'ok' : 'bad'}">${escapeHtml(heading)}</h1>
<p id="signature" data-verified="${verdict.verified}">${
                verdict.verified
                  ? '<span class="pill ok">✓ signature verified</span> <span class="muted">HMAC-SHA256 with the app’s webhook secret</span>'
                  : `<span class="pill bad">✗ signature not verified</span> <span class="muted">${escapeHtml(verdict.reason)}</span>`
              }</p>
<dl><dt>status</dt><dd id="status">${escapeHtml(status || '—')}</dd>
<dt>paycenter order</dt><dd id="order-id">${escapeHtml(query.orderId ?? '—')}</dd>
<dt>merchant order</dt><dd id="merchant-order-id">${escapeHtml(query.merchantOrderId ?? '—')}</dd>
<dt>signed at</dt><dd>${Number.isFinite(ts) && ts > 0 ? escapeHtml(new Date(ts * 1000).toISOString()) : '—'}</dd></dl></div>
<div class="card"><h2>Webhooks for this order</h2>${webhookList}
<p class="muted">The return URL only tells the browser what to show; a real shop fulfils the order on the verified webhook (or by asking paycenter). <a href="webhooks">All webhooks received</a></p></div>`,
            ),
          );
      },
    );
  };
}
