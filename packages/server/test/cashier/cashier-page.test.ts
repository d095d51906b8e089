import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { choicesFor, deviceOf } from '../../src/cashier/choices.js';
import { formatYuan, pickLocale } from '../../src/cashier/i18n.js';
import { BROWSER_CHANNELS } from '../../src/public/public-order.service.js';
import { backends } from '../helpers/backends.js';
import { type CashierApp, cashierPath, payInSandbox, type Shop, startCashierApp, submit } from './helpers.js';

const UA = {
  desktop:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  iphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  android:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
  wechat:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003129) NetType/WIFI Language/zh_CN',
};

describe('choosing what to offer', () => {
  it('tells WeChat, other phones and desktops apart by User-Agent', () => {
    expect(deviceOf(UA.wechat)).toBe('wechat');
    expect(deviceOf(UA.iphone)).toBe('mobile');
    expect(deviceOf(UA.android)).toBe('mobile');
    expect(deviceOf(UA.desktop)).toBe('desktop');
    expect(deviceOf(undefined)).toBe('desktop');
  });

  it('offers what fits the browser, of what the app enabled', () => {
    const all = [...BROWSER_CHANNELS];
    expect(choicesFor('wechat', all)).toEqual(['wx_jsapi']);
    expect(choicesFor('mobile', all)).toEqual(['wx_h5', 'alipay_wap']);
    expect(choicesFor('desktop', all)).toEqual(['wx_native', 'alipay_qr', 'alipay_pc']);
    expect(choicesFor('desktop', ['alipay_pc', 'wx_h5'])).toEqual(['alipay_pc']);
    // A phone whose fitting channels are off can still show a QR code to scan from another device.
    expect(choicesFor('mobile', ['wx_native', 'alipay_pc'])).toEqual(['wx_native']);
    expect(choicesFor('desktop', ['wx_h5', 'alipay_wap', 'wx_jsapi'])).toEqual([]);
  });

  it('speaks Chinese or English by Accept-Language, Chinese by default', () => {
    expect(pickLocale(undefined)).toBe('zh-CN');
    expect(pickLocale('en-US,en;q=0.9')).toBe('en');
    expect(pickLocale('zh-TW,zh;q=0.9,en;q=0.8')).toBe('zh-CN');
    expect(pickLocale('en;q=0.5,zh-CN;q=0.9')).toBe('zh-CN');
    expect(pickLocale('fr-FR,fr;q=0.9,en;q=0.8')).toBe('en');
    expect(pickLocale('de-DE')).toBe('zh-CN');
    expect(pickLocale('zh;q=0,en')).toBe('en');
  });

  it('writes fen as yuan', () => {
    expect(formatYuan(1234)).toBe('12.34');
    expect(formatYuan(1)).toBe('0.01');
    expect(formatYuan(100)).toBe('1.00');
    expect(formatYuan(123456789)).toBe('1,234,567.89');
  });
});

describe.each(backends())('the cashier page on %s', (backend) => {
  let app: CashierApp;
  let shop: Shop;

  beforeAll(async () => {
    app = await startCashierApp(backend);
    shop = await app.createShop({ codes: ['wx_native', 'wx_jsapi', 'alipay_qr', 'alipay_wap', 'wx_app'] });
  });
  afterAll(() => app.close());

  const page = (url: string, headers: Record<string, string> = {}) =>
    fetch(`${app.origin}${url}`, { headers });
  const offered = (html: string) => [...html.matchAll(/data-channel="([a-z_]+)"/g)].map((m) => m[1]);

  it('renders the order with the choices that fit, safely and uncached', async () => {
    const order = await shop.createOrder({ subject: '<b>Tea</b> & "cake"' });
    const res = await page(cashierPath(order), { 'user-agent': UA.desktop, 'accept-language': 'zh-CN' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1];
    expect(html).toContain(`<script nonce="${nonce}">`);
    // No external assets: nothing is loaded from anywhere.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)="(https?:)?\/\//);
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('Demo shop');
    expect(html).toContain('&lt;b&gt;Tea&lt;/b&gt; &amp; &quot;cake&quot;');
    expect(html).not.toContain('<b>Tea</b>');
    expect(html).toMatch(/<span class="cur">¥<\/span>12\.34/);
    expect(html).toContain('选择支付方式');
    expect(offered(html)).toEqual(['wx_native', 'alipay_qr']);
    expect(html).toContain('id="sandbox-badge"');
  });

  it('escapes a hostile app name and subject in the markup, the title and the page data', async () => {
    const name = '</script><img src=x onerror=alert(1)>';
    const hostile = await app.createShop({ codes: ['wx_native'], appOverrides: { name } });
    const order = await hostile.createOrder({ subject: '</script><script>alert(2)</script>\u2028' });
    const html = await (await page(cashierPath(order), { 'user-agent': UA.desktop })).text();
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>alert(2)');
    expect(html).toContain(
      '<span id="merchant-name">&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</span>',
    );
    expect(html).toMatch(/<title>[^<]*· &lt;\/script&gt;&lt;img src=x onerror=alert\(1\)&gt;<\/title>/);
    expect(html).toContain('<span class="avatar" aria-hidden="true">&lt;</span>');
    // Only the page's own two script elements close: the data block and the code.
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    const data = /<script type="application\/json" id="cashier-data">(.*?)<\/script>/s.exec(html)![1]!;
    expect(data).not.toContain('\u2028');
    expect(JSON.parse(data).order.subject).toBe('</script><script>alert(2)</script>\u2028');
  });

  it('takes the avatar from the app name’s first character, whole', async () => {
    const tea = await app.createShop({ codes: ['wx_native'], appOverrides: { name: '🍵 tea house' } });
    const html = await (await page(cashierPath(await tea.createOrder()))).text();
    expect(html).toContain('<span class="avatar" aria-hidden="true">🍵</span>');
  });

  it('offers each browser its own way to pay', async () => {
    const order = await shop.createOrder();
    const html = async (ua: string) => (await page(cashierPath(order), { 'user-agent': ua })).text();
    expect(offered(await html(UA.iphone))).toEqual(['alipay_wap']);
    expect(offered(await html(UA.android))).toEqual(['alipay_wap']);
    expect(offered(await html(UA.wechat))).toEqual(['wx_jsapi']);
  });

  it('speaks English to an English browser', async () => {
    const order = await shop.createOrder();
    const html = await (await page(cashierPath(order), { 'accept-language': 'en-GB,en;q=0.9' })).text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('Choose how to pay');
    expect(html).toContain('Time left to pay');
  });

  it('passes a valid openid to the page for wx_jsapi, and drops a malformed one', async () => {
    const order = await shop.createOrder();
    const good = await (
      await page(`${cashierPath(order)}&openid=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o`, { 'user-agent': UA.wechat })
    ).text();
    expect(good).toContain('"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"');
    const bad = await (
      await page(`${cashierPath(order)}&openid=%3Cscript%3E`, { 'user-agent': UA.wechat })
    ).text();
    expect(bad).toContain('"openid":null');
    // The JSAPI parameters the page hands to WeixinJSBridge.
    const res = await submit(app, order, { channelCode: 'wx_jsapi', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { attempt: { displayMode: string; displayContent: string } };
    expect(body.attempt.displayMode).toBe('jsapi');
    expect(Object.keys(JSON.parse(body.attempt.displayContent)).sort()).toEqual(
      ['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp'].sort(),
    );
  });

  it('refuses a malformed or missing openid for wx_jsapi before anything reaches the channel', async () => {
    const order = await shop.createOrder();
    for (const body of [{ channelCode: 'wx_jsapi', openid: '<script>' }, { channelCode: 'wx_jsapi' }]) {
      const res = await submit(app, order, body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string; field: string } }).error).toMatchObject({
        code: 'invalid_request',
        field: 'channelExtras.openid',
      });
    }
    const attempts = await app.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}/attempts`);
    expect(((await attempts.json()) as { data: unknown[] }).data).toEqual([]);
  });

  it('answers a wrong token or id with the same 404 page', async () => {
    const order = await shop.createOrder();
    const other = await shop.createOrder();
    const pages = await Promise.all([
      page(`/cashier/${order.id}?token=${other.clientToken}`),
      page(`/cashier/${order.id}`),
      page(`/cashier/99999999?token=${order.clientToken}`),
      page(`/cashier/abc?token=${order.clientToken}`),
    ]);
    const bodies = new Set<string>();
    for (const res of pages) {
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      bodies.add((await res.text()).replace(/nonce-?="?[A-Za-z0-9+/=]+"?/g, ''));
    }
    expect(bodies.size).toBe(1);
    expect([...bodies][0]).toContain('支付链接无效');
  });

  it('keeps the providers’ parameters on the way back from working', async () => {
    const order = await shop.createOrder();
    const res = await page(
      `${cashierPath(order)}&out_trade_no=P1&sign=abc&charset=utf-8&method=alipay.trade.page.pay.return`,
    );
    expect(res.status).toBe(200);
  });

  it('renders a paid order as the success view, with the signed way back', async () => {
    const order = await shop.createOrder();
    const submitted = (await (await submit(app, order, { channelCode: 'alipay_qr' })).json()) as {
      attempt: { no: string };
    };
    await payInSandbox(app, submitted.attempt.no);
    await vi.waitFor(
      async () => {
        const html = await (await page(cashierPath(order))).text();
        expect(html).toMatch(/id="view-paid"(?! hidden)/);
      },
      { timeout: 5000, interval: 20 },
    );
    const html = await (await page(cashierPath(order))).text();
    expect(html).toMatch(/id="view-choose" hidden/);
    expect(html).toMatch(
      /id="return-link" href="http:\/\/127\.0\.0\.1:\d+\/__sandbox\/merchant\/return\?orderId=/,
    );
  });

  it('renders an expired order as the closed view', async () => {
    const order = await shop.createOrder({ expireInSeconds: 60 });
    app.clock.advance(61_000);
    try {
      const html = await (await page(cashierPath(order))).text();
      expect(html).toMatch(/id="view-closed"(?! hidden)/);
      expect(html).toMatch(/id="view-choose" hidden/);
      expect(html).toContain('订单已关闭');
      const submitted = await submit(app, order, { channelCode: 'wx_native' });
      expect(submitted.status).toBe(409);
    } finally {
      app.clock.advance(-61_000);
    }
  });

  it('reads the app once for the page of a final order (its name and its return URL)', async () => {
    const order = await shop.createOrder();
    const closed = await app.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
    expect(closed.status).toBe(200);
    const apps = vi.spyOn(app.runtime.services.apps, 'get');
    try {
      const facts = await app.live.orders.cashier(order.id, order.clientToken);
      expect(facts.order.returnUrl).toContain('status=closed');
      expect(facts.appName).toBe('Demo shop');
      expect(apps).toHaveBeenCalledTimes(1);
    } finally {
      apps.mockRestore();
    }
  });

  it('says so when no enabled channel fits', async () => {
    const bare = await app.createShop({ codes: ['wx_app'] });
    const order = await bare.createOrder();
    const html = await (await page(cashierPath(order))).text();
    expect(offered(html)).toEqual([]);
    expect(html).toContain('id="no-channels"');
  });
});
