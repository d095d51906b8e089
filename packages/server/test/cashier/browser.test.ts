import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReturnUrl } from '../../src/public/return-url.js';
import { backends } from '../helpers/backends.js';
import {
  type CashierApp,
  cashierPath,
  type OrderJson,
  payInSandbox,
  type Shop,
  startCashierApp,
} from './helpers.js';

/**
 * The cashier in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser). Without /usr/bin/chromium these tests are skipped, saying so; CI installs it.
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `cashier browser tests SKIPPED: ${CHROMIUM} is not installed (apt-get install -y chromium); the other cashier tests still run`,
  );
}

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/cashier/', import.meta.url));
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const DESKTOP_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

describe.skipIf(!hasChromium).each(backends())('the cashier in Chromium on %s', (backend) => {
  let app: CashierApp;
  let shop: Shop;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    app = await startCashierApp(backend);
    shop = await app.createShop();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await app?.close();
  });

  async function openPage(options: {
    viewport?: { width: number; height: number };
    userAgent?: string;
    locale?: string;
    noEventSource?: boolean;
  }): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const context = await browser.newContext({
      viewport: options.viewport ?? DESKTOP,
      userAgent: options.userAgent ?? DESKTOP_UA,
      locale: options.locale ?? 'zh-CN',
      deviceScaleFactor: options.viewport === PHONE ? 2 : 1,
      isMobile: options.viewport === PHONE,
      hasTouch: options.viewport === PHONE,
    });
    contexts.push(context);
    if (options.noEventSource) {
      // As if EventSource were blocked or absent: before any of the page's own scripts run.
      await context.addInitScript({ content: 'delete window.EventSource; window.EventSource = undefined;' });
    }
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => errors.push(error.message));
    // Console errors include CSP violations; failed loads are reported with their URL below.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        errors.push(message.text());
      }
    });
    page.on('response', (response) => {
      // The sandbox's own provider pages (not the cashier's) let the browser ask for a favicon.
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) {
        errors.push(`${response.status()} ${response.url()}`);
      }
    });
    return { page, requests, errors };
  }

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: path.join(ARTIFACTS, `${backend}-${name}.png`), fullPage: true });

  const attemptNo = async (order: OrderJson) => {
    const res = await app.merchant(shop.apiKey, 'GET', `/api/v1/orders/${order.id}/attempts`);
    const attempts = ((await res.json()) as { data: { no: string }[] }).data;
    return attempts[attempts.length - 1]!.no;
  };

  /** Chooses wx_native, sees the QR code, pays through the control API; returns how long success took. */
  async function payByQr(page: Page, order: OrderJson, name: string): Promise<number> {
    await page.goto(`${app.origin}${cashierPath(order)}`);
    await page.locator('#choice-wx_native').waitFor();
    expect(await page.locator('#amount').textContent()).toBe('¥12.34');
    await shot(page, `${name}-choose`);
    await page.locator('#choice-wx_native').click();
    await page.locator('#qr svg').waitFor();
    expect(await page.locator('#wallet-link').isVisible()).toBe(true);
    await shot(page, `${name}-qr`);
    await page.evaluate('window.__sameDocument = true');
    const started = Date.now();
    const success = page.locator('#view-paid').waitFor({ state: 'visible', timeout: 10_000 });
    await payInSandbox(app, await attemptNo(order));
    await success;
    const elapsed = Date.now() - started;
    // No reload: the document that showed the QR code shows the success.
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    expect(await page.locator('#paid-title').textContent()).toBe('支付成功');
    await shot(page, `${name}-paid`);
    return elapsed;
  }

  async function landsOnReturnPage(page: Page, order: OrderJson): Promise<void> {
    await page.waitForURL(/\/__sandbox\/merchant\/return\?/, { timeout: 8000 });
    const url = new URL(page.url());
    expect(url.searchParams.get('orderId')).toBe(order.id);
    expect(url.searchParams.get('merchantOrderId')).toBe(order.merchantOrderId);
    expect(url.searchParams.get('status')).toBe('paid');
    expect(verifyReturnUrl(url, shop.webhookSecret, { now: app.clock.now() }).valid).toBe(true);
    // The demo merchant, checking independently, says so too.
    expect(await page.locator('#signature').getAttribute('data-verified')).toBe('true');
  }

  it('wx_native on a desktop: QR code, paid in the sandbox, success within 1 s by SSE, back to the merchant', async () => {
    const order = await shop.createOrder();
    const { page, requests, errors } = await openPage({ viewport: DESKTOP });
    const elapsed = await payByQr(page, order, 'desktop');
    expect(elapsed).toBeLessThan(1000);
    expect(requests.some((u) => u.includes(`/orders/${order.id}/events`))).toBe(true);
    await landsOnReturnPage(page, order);
    // The other half: the merchant's backend got the order.paid webhook, and it verified.
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.locator('#order-webhooks li').allInnerTexts();
        },
        { timeout: 5000, interval: 250 },
      )
      .toEqual([expect.stringMatching(/^order\.paid · ✓ verified/)]);
    await shot(page, 'desktop-return');
    await page.locator('a[href=webhooks]').click();
    await page.locator('#webhooks tr[data-verified=true]').first().waitFor();
    await shot(page, 'desktop-merchant-webhooks');
    expect(errors).toEqual([]);
  });

  it('the same with EventSource gone: polling every 3 s finds the payment', async () => {
    const order = await shop.createOrder();
    const { page, requests, errors } = await openPage({ viewport: DESKTOP, noEventSource: true });
    const elapsed = await payByQr(page, order, 'polling');
    expect(elapsed).toBeLessThan(4000);
    expect(requests.some((u) => u.includes('/events'))).toBe(false);
    expect(
      requests.filter((u) => u.includes(`/api/v1/public/orders/${order.id}?token=`)).length,
    ).toBeGreaterThan(0);
    await landsOnReturnPage(page, order);
    expect(errors).toEqual([]);
  });

  it('on a phone: the choices that fit, then WeChat H5 pays and comes back to the cashier', async () => {
    const order = await shop.createOrder();
    const { page, errors } = await openPage({ viewport: PHONE, userAgent: IPHONE_UA });
    await page.goto(`${app.origin}${cashierPath(order)}`);
    await page.locator('#choice-wx_h5').waitFor();
    const offered = await page
      .locator('[data-channel]')
      .evaluateAll((els) =>
        els.map((el) => (el as unknown as { dataset: { channel: string } }).dataset.channel),
      );
    expect(offered).toEqual(['wx_h5', 'alipay_wap']);
    await shot(page, 'phone-choose');
    await page.locator('#choice-wx_h5').click();
    // The sandbox's WeChat H5 page; its redirect_url leads back to the cashier.
    await page.waitForURL(/\/__sandbox\/wechatpay\/h5pay/);
    await page.locator('button[type=submit]').click();
    await page.waitForURL(/\/cashier\//);
    await page.locator('#view-paid').waitFor({ state: 'visible', timeout: 5000 });
    await shot(page, 'phone-paid');
    await landsOnReturnPage(page, order);
    await shot(page, 'phone-return');
    expect(errors).toEqual([]);
  });

  it('the newcomer’s way: "Open in sandbox wallet", Pay, and back through the cashier to the merchant', async () => {
    const order = await shop.createOrder();
    const { page, errors } = await openPage({ viewport: PHONE, userAgent: DESKTOP_UA, locale: 'en-US' });
    await page.goto(`${app.origin}${cashierPath(order)}`);
    await page.locator('#choice-alipay_qr').click();
    await page.locator('#qr svg').waitFor();
    expect(await page.locator('#pay-hint').textContent()).toBe('Open Alipay and scan to pay');
    await shot(page, 'phone-en-qr');
    await page.locator('#wallet-link').click();
    await page.waitForURL(/\/__sandbox\/wallet\//);
    expect(await page.locator('#amount').textContent()).toBe('¥12.34');
    await shot(page, 'wallet');
    await page.locator('#pay').click();
    await page.locator('#status[data-status=paid]').waitFor();
    await shot(page, 'wallet-paid');
    await page.waitForURL(/\/cashier\//, { timeout: 5000 });
    await page.locator('#view-paid').waitFor({ state: 'visible', timeout: 5000 });
    expect(await page.locator('#paid-title').textContent()).toBe('Payment successful');
    await landsOnReturnPage(page, order);
    expect(errors).toEqual([]);
  });

  it('Alipay page pay on a desktop: to the Alipay cashier and back', async () => {
    const order = await shop.createOrder();
    const { page, errors } = await openPage({ viewport: DESKTOP });
    await page.goto(`${app.origin}${cashierPath(order)}`);
    await page.locator('#choice-alipay_pc').click();
    await page.waitForURL(/\/__sandbox\/alipay\//);
    await page.locator('#pay').click();
    await page.waitForURL(/\/cashier\//);
    await page.locator('#view-paid').waitFor({ state: 'visible', timeout: 5000 });
    await landsOnReturnPage(page, order);
    expect(errors).toEqual([]);
  });

  it('an expired order shows the closed view; one expiring while open turns to it', async () => {
    const expired = await shop.createOrder({ expireInSeconds: 60 });
    app.clock.advance(61_000);
    try {
      const { page, errors } = await openPage({ viewport: PHONE, userAgent: IPHONE_UA });
      await page.goto(`${app.origin}${cashierPath(expired)}`);
      await page.locator('#view-closed').waitFor({ state: 'visible' });
      expect(await page.locator('#closed-title').textContent()).toBe('订单已关闭');
      expect(await page.locator('#view-choose').isVisible()).toBe(false);
      await shot(page, 'phone-closed');
      expect(errors).toEqual([]);
    } finally {
      app.clock.advance(-61_000);
    }
    // A few seconds before an order expires, open it: the countdown runs out in the page.
    const soon = await shop.createOrder({ expireInSeconds: 60 });
    app.clock.advance(55_000);
    try {
      const { page, errors } = await openPage({ viewport: DESKTOP });
      await page.goto(`${app.origin}${cashierPath(soon)}`);
      await page.locator('#choice-wx_native').waitFor();
      expect(await page.locator('#countdown-value').textContent()).toMatch(/^00:0\d$/);
      await page.locator('#view-closed').waitFor({ state: 'visible', timeout: 10_000 });
      expect(await page.locator('#countdown').isVisible()).toBe(false);
      await shot(page, 'desktop-closed');
      expect(errors).toEqual([]);
    } finally {
      app.clock.advance(-55_000);
    }
  });
});
