import type { SandboxPayment } from '../ledger.js';
import { fenToYuan } from './protocol.js';
import type { TradeStatus } from './trades.js';

/** The sandbox's stand-in for Alipay's web cashier (page and wap pay), and its error page. */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(title: string, content: string): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f5f5f5;margin:0;padding:2rem 1rem;color:#333}
main{max-width:28rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.1rem;color:#1677ff;margin-top:0}.amount{font-size:2rem;font-weight:600;margin:.5rem 0}
button{background:#1677ff;color:#fff;border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem;cursor:pointer}
dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem;font-size:.9rem}dt{color:#888}dd{margin:0;word-break:break-all}
.note{font-size:.8rem;color:#888}
</style>
</head>
<body><main>
${content}
</main></body>
</html>
`;
}

export function cashierPage(
  payment: SandboxPayment,
  status: TradeStatus,
  links: { pay: string; quitUrl: string | null },
): string {
  const rows = [
    ['商户订单号 out_trade_no', payment.outTradeNo],
    ['支付宝交易号 trade_no', payment.tradeNo],
    ['商品 subject', payment.subject],
    ['状态 trade_status', status],
  ]
    .map(([term, value]) => `<dt>${escapeHtml(term ?? '')}</dt><dd>${escapeHtml(value ?? '')}</dd>`)
    .join('');
  const action =
    status === 'WAIT_BUYER_PAY'
      ? `<form method="post" action="${escapeHtml(links.pay)}"><button type="submit" id="pay">Pay 确认付款</button></form>`
      : `<p>This trade is ${escapeHtml(status)}.</p>`;
  const quit = links.quitUrl
    ? `<p><a href="${escapeHtml(links.quitUrl)}" id="quit">Back to the merchant</a></p>`
    : '';
  return page(
    `Alipay sandbox cashier — ${payment.subject}`,
    `<h1>支付宝 Alipay sandbox cashier</h1>
<div class="amount" data-amount="${escapeHtml(fenToYuan(payment.amount))}">¥ ${escapeHtml(fenToYuan(payment.amount))}</div>
<dl>${rows}</dl>
${action}
${quit}
<p class="note">paycenter sandbox: no money moves. Paying sends the signed notify to notify_url and returns the browser to return_url.</p>`,
  );
}

export function paidPage(payment: SandboxPayment): string {
  return page(
    'Alipay sandbox — paid',
    `<h1>支付成功 Paid</h1><p id="paid">Trade ${escapeHtml(payment.tradeNo)} (${escapeHtml(payment.outTradeNo)}) is paid. The merchant gave no return_url.</p>`,
  );
}

export function errorPage(code: string, subCode: string, subMsg: string): string {
  return page(
    `Alipay sandbox — ${subCode}`,
    `<h1>错误 Error</h1>
<dl><dt>code</dt><dd id="code">${escapeHtml(code)}</dd><dt>sub_code</dt><dd id="sub_code">${escapeHtml(subCode)}</dd>
<dt>sub_msg</dt><dd id="sub_msg">${escapeHtml(subMsg)}</dd></dl>`,
  );
}
