import type { BrowserChannel, CashierFacts } from '../public/public-order.service.js';
import { formatYuan, type Locale, textFor } from './i18n.js';
import { CASHIER_SCRIPT } from './script.js';
import { CASHIER_CSS } from './styles.js';

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** JSON inside a <script> element: `<` escaped so no text can close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const WECHAT_ICON =
  '<svg class="icon" viewBox="0 0 40 40" aria-hidden="true"><rect width="40" height="40" rx="10" fill="#07c160"/>' +
  '<path fill="#fff" d="M16.6 10.5c-5.3 0-9.6 3.6-9.6 8 0 2.5 1.4 4.7 3.5 6.2l-.9 2.8 3.3-1.7c1.2.4 2.4.6 3.7.6h.6a7.3 7.3 0 0 1-.3-2c0-4.4 4.1-7.9 9.2-7.9h.5c-.9-3.4-4.9-6-9.9-6Z"/>' +
  '<path fill="#fff" d="M33 23.4c0-3.6-3.6-6.5-7.9-6.5s-7.9 2.9-7.9 6.5 3.6 6.5 7.9 6.5c1 0 2-.2 2.9-.5l2.7 1.4-.7-2.3c1.8-1.2 3-3 3-5.1Z"/>' +
  '<circle cx="13.3" cy="16.3" r="1.2" fill="#07c160"/><circle cx="19.8" cy="16.3" r="1.2" fill="#07c160"/>' +
  '<circle cx="22.6" cy="22.3" r="1" fill="#07c160"/><circle cx="27.7" cy="22.3" r="1" fill="#07c160"/></svg>';

// The character 支 drawn as strokes, so it shows without a CJK font.
const ALIPAY_ICON =
  '<svg class="icon" viewBox="0 0 40 40" aria-hidden="true"><rect width="40" height="40" rx="10" fill="#1677ff"/>' +
  '<path d="M11.5 14h17M20 9.5v8.5M10.5 19h19M14 22.5h11.5c-2.2 5-6.5 8.2-12.5 9.5M16.5 25c2.8 3.4 7 5.8 12.5 7" ' +
  'fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>';

const CHEVRON =
  '<svg class="chev" viewBox="0 0 20 20" aria-hidden="true"><path d="M7.5 4.5 13 10l-5.5 5.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>';

const LOCK =
  '<svg viewBox="0 0 16 16" aria-hidden="true"><rect x="3" y="7" width="10" height="7.5" rx="1.8" fill="currentColor"/>' +
  '<path d="M5.2 7V5.3a2.8 2.8 0 0 1 5.6 0V7" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>';

const SUCCESS_ICON =
  '<svg class="result-icon" viewBox="0 0 72 72" aria-hidden="true"><circle cx="36" cy="36" r="36" fill="#dcfce7"/>' +
  '<circle cx="36" cy="36" r="26" fill="#16a34a"/><path d="m24.5 36.5 7.5 7.5 15.5-16" fill="none" stroke="#fff" ' +
  'stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>';

const CLOSED_ICON =
  '<svg class="result-icon" viewBox="0 0 72 72" aria-hidden="true"><circle cx="36" cy="36" r="36" fill="#f3f4f6"/>' +
  '<circle cx="36" cy="36" r="22" fill="none" stroke="#9ca3af" stroke-width="4.5"/>' +
  '<path d="M36 24v13l8 5" fill="none" stroke="#9ca3af" stroke-width="4.5" stroke-linecap="round" stroke-linejoin="round"/></svg>';

const ICONS: Record<BrowserChannel, string> = {
  wx_native: WECHAT_ICON,
  wx_jsapi: WECHAT_ICON,
  wx_h5: WECHAT_ICON,
  alipay_qr: ALIPAY_ICON,
  alipay_pc: ALIPAY_ICON,
  alipay_wap: ALIPAY_ICON,
};

export interface CashierPageInput {
  facts: CashierFacts;
  token: string;
  locale: Locale;
  choices: BrowserChannel[];
  /** wx_jsapi: the payer's openid, from the merchant's WeChat OAuth (`?openid=` on the cashier URL). */
  openid: string | undefined;
  sandbox: boolean;
  nonce: string;
}

type View = 'choose' | 'pay' | 'paid' | 'closed';

function shell(locale: Locale, title: string, nonce: string, body: string, view = 'closed'): string {
  return `<!doctype html>
<html lang="${locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<meta name="format-detection" content="telephone=no">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${CASHIER_CSS}</style>
</head>
<body data-view="${view}">
${body}
</body>
</html>
`;
}

/** The hosted cashier, rendered whole on the server; the script only moves between its views. */
export function renderCashierPage(input: CashierPageInput): string {
  const { facts, locale, choices, nonce } = input;
  const { order } = facts;
  const t = textFor(locale);
  const expired = order.status === 'waiting' && Date.parse(order.expireAt) <= facts.now.getTime();
  const view: View =
    order.status === 'paid' ? 'paid' : order.status === 'waiting' && !expired ? 'choose' : 'closed';
  const refunded = order.status === 'refunded';
  const yuan = formatYuan(order.amount);
  const hide = (v: View) => (view === v ? '' : ' hidden');
  // The first code point, not the first UTF-16 unit: a name starting with an emoji keeps it whole.
  const initial = ([...facts.appName.trim()][0] ?? '¥').toUpperCase();

  const choiceItems = choices
    .map(
      (code) =>
        `<li><button type="button" class="choice" data-channel="${code}" id="choice-${code}">${ICONS[code]}` +
        `<span class="label"><b>${escapeHtml(t.channels[code].name)}</b><small>${escapeHtml(t.channels[code].hint)}</small></span>${CHEVRON}</button></li>`,
    )
    .join('');

  const data = {
    orderId: order.id,
    token: input.token,
    openid: input.openid ?? null,
    order,
    serverNow: facts.now.getTime(),
    sandbox: input.sandbox,
    text: {
      channels: t.channels,
      scan: t.scan,
      waiting: t.waiting,
      checking: t.checking,
      notPaidYet: t.notPaidYet,
      tooSoon: t.tooSoon,
      redirecting: t.redirecting,
      returningIn: t.returningIn,
      canClose: t.canClose,
      closedTitle: t.closedTitle,
      closedText: t.closedText,
      refundedTitle: t.refundedTitle,
      refundedText: t.refundedText,
      submitFailed: t.submitFailed,
      needOpenid: t.needOpenid,
      openInWechat: t.openInWechat,
      cancelled: t.cancelled,
      networkError: t.networkError,
    },
  };

  const body = `<div class="top"><span class="secure">${LOCK}${escapeHtml(t.secure)}</span>${
    input.sandbox ? `<span class="badge-sandbox" id="sandbox-badge">${escapeHtml(t.sandbox)}</span>` : ''
  }</div>
<main class="card" id="cashier">
<section class="summary">
<div class="merchant"><span class="avatar" aria-hidden="true">${escapeHtml(initial)}</span><span id="merchant-name">${escapeHtml(facts.appName)}</span></div>
<p class="subject" id="subject">${escapeHtml(order.subject)}</p>
<p class="amount" id="amount" data-fen="${order.amount}"><span class="cur">¥</span>${yuan}</p>
<p class="countdown" id="countdown"${view === 'choose' ? '' : ' hidden'}>${escapeHtml(t.timeLeft)} <b id="countdown-value">--:--</b></p>
</section>

<section class="view" id="view-choose"${hide('choose')}>
<h2>${escapeHtml(t.choose)}</h2>
${choices.length > 0 ? `<ul class="choices">${choiceItems}</ul>` : `<p class="empty" id="no-channels">${escapeHtml(t.noChannels)}</p>`}
<p class="message" id="choose-message" role="status" aria-live="polite"></p>
<noscript><p class="message error">${escapeHtml(t.noScript)}</p></noscript>
<div class="actions"><button type="button" class="btn btn-link" id="choose-paid">${escapeHtml(t.closedPaid)}</button></div>
</section>

<section class="view" id="view-pay" hidden>
<p class="pay-title"><span id="pay-icon-wechatpay">${WECHAT_ICON}</span><span id="pay-icon-alipay">${ALIPAY_ICON}</span><span id="pay-name"></span></p>
<div class="qr" id="qr" hidden></div>
<p class="hint" id="pay-hint"></p>
<p class="waiting"><span class="spinner" aria-hidden="true"></span>${escapeHtml(t.waiting)}</p>
<div class="actions">
<a class="btn btn-wallet" id="wallet-link" hidden>${escapeHtml(t.openWallet)}</a>
<button type="button" class="btn btn-primary" id="paid-button">${escapeHtml(t.iHavePaid)}</button>
<button type="button" class="btn btn-link" id="change-method">${escapeHtml(t.changeMethod)}</button>
</div>
<p class="message" id="pay-message" role="status" aria-live="polite"></p>
<div id="form-box" hidden></div>
</section>

<section class="view result" id="view-paid"${hide('paid')}>
${SUCCESS_ICON}
<h2 id="paid-title">${escapeHtml(t.paidTitle)}</h2>
<p class="paid-amount">¥${yuan}</p>
<p id="redirect-note" role="status" aria-live="polite">${order.returnUrl ? '' : escapeHtml(t.canClose)}</p>
<a class="btn btn-primary" id="return-link"${order.returnUrl ? ` href="${escapeHtml(order.returnUrl)}"` : ' hidden'}>${escapeHtml(t.returnNow)}</a>
</section>

<section class="view result" id="view-closed"${hide('closed')}>
${CLOSED_ICON}
<h2 id="closed-title">${escapeHtml(refunded ? t.refundedTitle : t.closedTitle)}</h2>
<p id="closed-text">${escapeHtml(refunded ? t.refundedText : t.closedText)}</p>
<div class="actions">
<a class="btn btn-secondary" id="closed-return"${order.returnUrl && view === 'closed' ? ` href="${escapeHtml(order.returnUrl)}"` : ' hidden'}>${escapeHtml(t.returnNow)}</a>
<button type="button" class="btn btn-link" id="closed-paid"${expired ? '' : ' hidden'}>${escapeHtml(t.closedPaid)}</button>
</div>
<p class="message" id="closed-message" role="status" aria-live="polite"></p>
</section>
</main>
<footer>${escapeHtml(t.orderNo)} ${escapeHtml(order.id)} · paycenter</footer>
<script type="application/json" id="cashier-data">${scriptJson(data)}</script>
<script nonce="${nonce}">${CASHIER_SCRIPT}</script>`;

  return shell(locale, `${t.title} · ¥${yuan} · ${facts.appName}`, nonce, body, view);
}

/** What a wrong or stale link shows: the same for an unknown order and a wrong token. */
export function renderNotFoundPage(locale: Locale, nonce: string): string {
  const t = textFor(locale);
  return shell(
    locale,
    t.notFoundTitle,
    nonce,
    `<div class="top"><span class="secure">${LOCK}${escapeHtml(t.secure)}</span></div>
<main class="card"><section class="view result">${CLOSED_ICON}<h2>${escapeHtml(t.notFoundTitle)}</h2>
<p>${escapeHtml(t.notFoundText)}</p></section></main>`,
  );
}
