import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { type ChannelCode, providerOf } from '../../src/channels/channel-codes.js';
import type { Clock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase } from '../../src/db/database.js';
import { BROWSER_CHANNELS } from '../../src/public/public-order.service.js';
import type { LiveStatus, LiveStatusSettings } from '../../src/realtime/live-status.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { type Backend, createPostgresDatabase } from '../helpers/backends.js';
import { ADMIN_TOKEN } from '../helpers/harness.js';

/** Real time, moved forward on demand: the sandbox and the browser run on real time, tests skip ahead. */
export class OffsetClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface CashierApp {
  runtime: Runtime;
  live: LiveStatus;
  clock: OffsetClock;
  /** `http://127.0.0.1:port` */
  origin: string;
  /** PostgreSQL only: the database this instance uses (for a second instance). */
  databaseUrl: string | undefined;
  masterKey: string;
  logs: () => string;
  admin(method: string, url: string, body?: unknown): Promise<Response>;
  merchant(apiKey: string, method: string, url: string, body?: unknown): Promise<Response>;
  /** An app whose return and notify URLs are the sandbox's demo merchant, with the browser channels on the sandbox. */
  createShop(options?: {
    codes?: readonly ChannelCode[];
    appOverrides?: Record<string, unknown>;
  }): Promise<Shop>;
  close(): Promise<void>;
}

export interface Shop {
  id: string;
  apiKey: string;
  webhookSecret: string;
  createOrder(overrides?: Record<string, unknown>): Promise<OrderJson>;
}

export interface OrderJson {
  id: string;
  merchantOrderId: string;
  clientToken: string;
  amount: number;
  status: string;
  expireAt: string;
  [key: string]: unknown;
}

/** The real runtime, listening on loopback with the sandbox and its live-status layer (`runtime.live`). */
export async function startCashierApp(
  backend: Backend,
  options: { settings?: Partial<LiveStatusSettings>; env?: Record<string, string> } = {},
): Promise<CashierApp> {
  const clock = new OffsetClock();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paycenter-cashier-'));
  const postgres = backend === 'postgres' ? await createPostgresDatabase('paycenter_cashier') : undefined;
  const masterKey = randomBytes(32).toString('base64');
  const config = loadConfig({
    PAYCENTER_DATA_DIR: dataDir,
    PAYCENTER_MASTER_KEY: masterKey,
    PAYCENTER_ADMIN_TOKEN: ADMIN_TOKEN,
    PAYCENTER_SANDBOX: 'true',
    PAYCENTER_SANDBOX_TIME_SCALE: '0.001',
    LOG_LEVEL: 'info',
    ...(postgres ? { DATABASE_URL: postgres.url } : {}),
    ...options.env,
  });
  let logText = '';
  const logStream = new PassThrough();
  logStream.on('data', (chunk: Buffer) => {
    logText += chunk.toString('utf8');
  });
  const database = postgres ? undefined : await openDatabase({ kind: 'pglite', dataDir: null });
  // Workers on: webhooks reach the sandbox's demo merchant, as with `paycenter start`.
  const runtime = await createRuntime(config, {
    clock,
    logStream,
    workers: true,
    ...(database ? { database } : {}),
  });
  const live = runtime.live;
  Object.assign(live.settings, options.settings ?? {});
  const origin = await runtime.http.listen({ host: '127.0.0.1', port: 0 });
  runtime.setPublicUrl(origin);

  const call = (headers: Record<string, string>, method: string, url: string, body?: unknown) =>
    fetch(`${origin}${url}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  const app: CashierApp = {
    runtime,
    live,
    clock,
    origin,
    databaseUrl: postgres?.url,
    masterKey,
    logs: () => logText,
    admin: (method, url, body) => call({ authorization: `Bearer ${ADMIN_TOKEN}` }, method, url, body),
    merchant: (apiKey, method, url, body) => call({ authorization: `Bearer ${apiKey}` }, method, url, body),
    async createShop(shopOptions = {}) {
      const created = await app.admin('POST', '/admin-api/apps', {
        name: 'Demo shop',
        notifyUrl: `${origin}/__sandbox/merchant/webhooks`,
        returnUrl: `${origin}/__sandbox/merchant/return`,
        ...shopOptions.appOverrides,
      });
      if (created.status !== 201)
        throw new Error(`creating an app failed: ${created.status} ${await created.text()}`);
      const shop = (await created.json()) as { id: string; apiKey: string; webhookSecret: string };
      const merchants = (await (
        await fetch(`${origin}/__sandbox/control/merchants`, { method: 'POST' })
      ).json()) as Record<string, unknown>;
      for (const code of shopOptions.codes ?? BROWSER_CHANNELS) {
        const res = await app.admin('POST', '/admin-api/channels', {
          appId: shop.id,
          code,
          config: merchants[providerOf(code)],
        });
        if (res.status !== 201) throw new Error(`creating ${code} failed: ${res.status} ${await res.text()}`);
      }
      runtime.sandbox?.demoMerchant.useWebhookSecret(shop.webhookSecret);
      return {
        ...shop,
        async createOrder(overrides = {}) {
          const res = await app.merchant(shop.apiKey, 'POST', '/api/v1/orders', {
            merchantOrderId: `M${randomBytes(6).toString('hex')}`,
            subject: 'A pot of tea',
            amount: 1234,
            ...overrides,
          });
          if (res.status !== 201)
            throw new Error(`creating an order failed: ${res.status} ${await res.text()}`);
          return (await res.json()) as OrderJson;
        },
      };
    },
    close: async () => {
      await runtime.close();
      await postgres?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return app;
}

export function cashierPath(order: { id: string; clientToken: string }): string {
  return `/cashier/${order.id}?token=${encodeURIComponent(order.clientToken)}`;
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** A minimal Server-Sent Events reader over node:http, keeping comments (heartbeats) too. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  body = '';
  readonly ended: Promise<void>;
  #request: http.ClientRequest | undefined;
  #buffer = '';
  #resolveEnded!: () => void;
  #endedFlag = false;

  private constructor() {
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get isEnded(): boolean {
    return this.#endedFlag;
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    return new Promise((resolve, reject) => {
      const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
        client.status = response.statusCode ?? 0;
        client.headers = response.headers;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => client.#feed(chunk));
        response.on('end', () => client.#end());
        response.on('close', () => client.#end());
        response.on('error', () => client.#end());
        resolve(client);
      });
      request.on('error', (error) => {
        client.#end();
        reject(error);
      });
      client.#request = request;
    });
  }

  #feed(chunk: string): void {
    this.body += chunk;
    this.#buffer += chunk;
    let index = this.#buffer.indexOf('\n\n');
    while (index >= 0) {
      const block = this.#buffer.slice(0, index);
      this.#buffer = this.#buffer.slice(index + 2);
      const event: SseEvent = { data: '' };
      const data: string[] = [];
      let isEvent = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('retry:')) this.retries.push(Number(line.slice(6)));
        else if (line.startsWith('id:')) {
          event.id = line.slice(3).trim();
          isEvent = true;
        } else if (line.startsWith('event:')) {
          event.event = line.slice(6).trim();
          isEvent = true;
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
          isEvent = true;
        }
      }
      if (isEvent) {
        event.data = data.join('\n');
        this.events.push(event);
      }
      index = this.#buffer.indexOf('\n\n');
    }
  }

  #end(): void {
    if (this.#endedFlag) return;
    this.#endedFlag = true;
    this.#resolveEnded();
  }

  json(index: number): Record<string, unknown> {
    const event = this.events[index];
    if (!event) throw new Error(`no event ${index}; have ${this.events.length}`);
    return JSON.parse(event.data) as Record<string, unknown>;
  }

  close(): void {
    this.#request?.destroy();
    this.#end();
  }
}

/** Pays an attempt in the sandbox the way the control API does, and waits for its callback to be sent. */
export async function payInSandbox(app: CashierApp, outTradeNo: string): Promise<void> {
  const res = await fetch(`${app.origin}/__sandbox/control/payments/${outTradeNo}/pay`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`paying ${outTradeNo} failed: ${res.status} ${await res.text()}`);
}

export async function submit(
  app: CashierApp,
  order: { id: string; clientToken: string },
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(
    `${app.origin}/api/v1/public/orders/${order.id}/submit?token=${encodeURIComponent(order.clientToken)}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    },
  );
}
