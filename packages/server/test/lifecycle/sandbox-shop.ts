import { expect } from 'vitest';
import type { ChannelCode } from '../../src/channels/channel-codes.js';
import type { Backend } from '../helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from '../helpers/harness.js';

/** A listening paycenter with its sandbox, one app and sandbox channels: the lifecycle tests' shop. */
export interface SandboxShop {
  t: TestApp;
  app: { id: string; apiKey: string; webhookSecret: string };
  /** The sandbox credentials each channel was configured with, by provider. */
  merchants: Record<'wechatpay' | 'alipay', Record<string, unknown>>;
  /** The channel id of each code the shop enabled. */
  channels: Partial<Record<ChannelCode, string>>;
  /** Creates an order (expiring in `expireInSeconds`, default 900) and returns its view. */
  order(
    overrides?: Record<string, unknown>,
  ): Promise<{ id: string; amount: number; merchantOrderId: string; expireAt: string }>;
  /** Submits the order to a channel; the attempt view. */
  submit(
    orderId: string,
    code: ChannelCode,
  ): Promise<{ id: string; no: string; status: string; displayContent: string }>;
  /** The payer pays the attempt at the sandbox; its callback goes out by the sandbox's callback mode. */
  pay(no: string): Promise<void>;
  /** Waits (bounded) until the sandbox has no callback in flight or waiting for a retry. */
  settle(): Promise<void>;
  getOrder(id: string): Promise<Record<string, unknown> & { status: string; refundedAmount: number }>;
  events(orderId: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startSandboxShop(
  backend: Backend,
  codes: readonly ChannelCode[],
  appSettings: Record<string, unknown> = {},
): Promise<SandboxShop> {
  const t = await startTestApp(backend, { PAYCENTER_SANDBOX_TIME_SCALE: '0.001' }, { listen: true });
  const app = await t.createApp(appSettings);
  const { merchants, channels } = await t.enableSandboxChannels(app.id, codes);
  const shop: SandboxShop = {
    t,
    app,
    merchants,
    channels,
    async order(overrides = {}) {
      const res = await t.merchant(
        app.apiKey,
        'POST',
        '/api/v1/orders',
        newOrder({ expireInSeconds: 900, ...overrides }),
      );
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    },
    async submit(orderId, code) {
      const res = await t.merchant(app.apiKey, 'POST', `/api/v1/orders/${orderId}/submit`, {
        channelCode: code,
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    },
    async pay(no) {
      const res = await t.runtime.http.inject({
        method: 'POST',
        url: `/__sandbox/control/payments/${no}/pay`,
      });
      expect(res.statusCode, res.body).toBe(200);
    },
    async settle() {
      await withDeadline(t.runtime.sandbox!.callbacks.idle(), 10_000, 'sandbox callbacks to settle');
    },
    async getOrder(id) {
      return (await t.merchant(app.apiKey, 'GET', `/api/v1/orders/${id}`)).json();
    },
    async events(orderId) {
      const rows = await t.runtime.database.db
        .selectFrom('events')
        .select('type')
        .where('order_id', '=', orderId)
        .orderBy('id')
        .execute();
      return rows.map((row) => row.type);
    },
    close: () => t.close(),
  };
  return shop;
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what} after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value (bounded); for outcomes the sandbox delivers on its own timers. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
