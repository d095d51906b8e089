import type { BrowserChannel } from '../public/public-order.service.js';

export type Locale = 'zh-CN' | 'en';

/**
 * The locale the payer prefers, from Accept-Language (quality values honoured): Chinese of any region
 * gets zh-CN, English gets English; with neither (or no header) the cashier speaks Chinese, the
 * language of WeChat Pay's and Alipay's payers.
 */
export function pickLocale(acceptLanguage: string | undefined): Locale {
  if (!acceptLanguage) return 'zh-CN';
  const ranked = acceptLanguage
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: tag.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.tag !== '' && entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    if (tag === 'zh' || tag.startsWith('zh-')) return 'zh-CN';
    if (tag === 'en' || tag.startsWith('en-')) return 'en';
  }
  return 'zh-CN';
}

export interface CashierText {
  title: string;
  secure: string;
  timeLeft: string;
  choose: string;
  channels: Record<BrowserChannel, { name: string; hint: string }>;
  noChannels: string;
  scan: { wechatpay: string; alipay: string };
  waiting: string;
  iHavePaid: string;
  checking: string;
  notPaidYet: string;
  tooSoon: string;
  changeMethod: string;
  redirecting: string;
  openWallet: string;
  sandbox: string;
  paidTitle: string;
  returningIn: string;
  returnNow: string;
  canClose: string;
  closedTitle: string;
  closedText: string;
  refundedTitle: string;
  refundedText: string;
  closedPaid: string;
  submitFailed: string;
  needOpenid: string;
  openInWechat: string;
  cancelled: string;
  orderNo: string;
  networkError: string;
  noScript: string;
  notFoundTitle: string;
  notFoundText: string;
}

const ZH: CashierText = {
  title: '收银台',
  secure: '安全支付',
  timeLeft: '剩余支付时间',
  choose: '选择支付方式',
  channels: {
    wx_native: { name: '微信支付', hint: '使用微信扫码支付' },
    wx_jsapi: { name: '微信支付', hint: '在微信内完成支付' },
    wx_h5: { name: '微信支付', hint: '跳转到微信完成支付' },
    alipay_qr: { name: '支付宝', hint: '使用支付宝扫码支付' },
    alipay_pc: { name: '支付宝', hint: '登录支付宝网页版支付' },
    alipay_wap: { name: '支付宝', hint: '跳转到支付宝完成支付' },
  },
  noChannels: '当前设备暂无可用的支付方式，请联系商户。',
  scan: { wechatpay: '请使用微信扫一扫完成支付', alipay: '请使用支付宝扫一扫完成支付' },
  waiting: '等待支付结果…',
  iHavePaid: '我已支付',
  checking: '正在查询支付结果…',
  notPaidYet: '暂未查到支付结果，请完成支付后再试。',
  tooSoon: '查询过于频繁，请稍后再试。',
  changeMethod: '更换支付方式',
  redirecting: '正在跳转…',
  openWallet: '在沙箱钱包中打开',
  sandbox: '沙箱模式 · 不会真实扣款',
  paidTitle: '支付成功',
  returningIn: '{n} 秒后返回商户',
  returnNow: '返回商户',
  canClose: '您现在可以关闭此页面。',
  closedTitle: '订单已关闭',
  closedText: '支付时间已过。如需购买，请返回商户重新下单。',
  refundedTitle: '订单已退款',
  refundedText: '这笔订单的款项已退回。',
  closedPaid: '已经付款？查询结果',
  submitFailed: '发起支付失败：',
  needOpenid: '请从商户的微信链接打开此页面（缺少 openid）。',
  openInWechat: '请在微信中打开此页面完成支付。',
  cancelled: '支付已取消，可以重新选择支付方式。',
  orderNo: '订单号',
  networkError: '网络异常，请稍后重试。',
  noScript: '请启用 JavaScript 以完成支付。',
  notFoundTitle: '支付链接无效',
  notFoundText: '请返回商户，重新打开支付页面。',
};

const EN: CashierText = {
  title: 'Checkout',
  secure: 'Secure checkout',
  timeLeft: 'Time left to pay',
  choose: 'Choose how to pay',
  channels: {
    wx_native: { name: 'WeChat Pay', hint: 'Scan a QR code with WeChat' },
    wx_jsapi: { name: 'WeChat Pay', hint: 'Pay inside WeChat' },
    wx_h5: { name: 'WeChat Pay', hint: 'Continue in the WeChat app' },
    alipay_qr: { name: 'Alipay', hint: 'Scan a QR code with Alipay' },
    alipay_pc: { name: 'Alipay', hint: 'Pay on the Alipay website' },
    alipay_wap: { name: 'Alipay', hint: 'Continue in the Alipay app' },
  },
  noChannels: 'No payment method is available on this device. Please contact the merchant.',
  scan: { wechatpay: 'Open WeChat and scan to pay', alipay: 'Open Alipay and scan to pay' },
  waiting: 'Waiting for your payment…',
  iHavePaid: 'I have paid',
  checking: 'Checking your payment…',
  notPaidYet: 'Your payment has not arrived yet. Finish paying, then try again.',
  tooSoon: 'Please wait a few seconds before checking again.',
  changeMethod: 'Choose another method',
  redirecting: 'Redirecting…',
  openWallet: 'Open in sandbox wallet',
  sandbox: 'Sandbox · no real money',
  paidTitle: 'Payment successful',
  returningIn: 'Returning to the merchant in {n} s',
  returnNow: 'Return to the merchant',
  canClose: 'You can close this page now.',
  closedTitle: 'This order is closed',
  closedText: 'The time to pay has run out. To buy, go back to the merchant and order again.',
  refundedTitle: 'This order was refunded',
  refundedText: 'The money for this order has been returned.',
  closedPaid: 'Already paid? Check again',
  submitFailed: 'Could not start the payment: ',
  needOpenid: 'Open this page from the merchant’s link inside WeChat (no openid was given).',
  openInWechat: 'Open this page in WeChat to pay.',
  cancelled: 'The payment was cancelled; you can choose again.',
  orderNo: 'Order',
  networkError: 'Network problem; please try again.',
  noScript: 'Please enable JavaScript to pay.',
  notFoundTitle: 'This payment link is not valid',
  notFoundText: 'Go back to the merchant and open the payment page again.',
};

export function textFor(locale: Locale): CashierText {
  return locale === 'en' ? EN : ZH;
}

/** ¥12.34, ¥1,234.50: fen as yuan with two decimals and thousands separators. */
export function formatYuan(fen: number): string {
  const yuan = Math.floor(fen / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${yuan}.${String(fen % 100).padStart(2, '0')}`;
}
