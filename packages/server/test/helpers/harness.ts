import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { LightMyRequestResponse } from 'fastify';
import { type ChannelCode, type Provider, providerOf } from '../../src/channels/channel-codes.js';
import { type Clock, ManualClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/config.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { type Backend, createTestDatabase } from './backends.js';

export const ADMIN_TOKEN = 'adm_test_token_0123456789abcdefghijklmnop';

export interface TestApp {
  runtime: Runtime;
  backend: Backend;
  clock: ManualClock;
  /** Every log line the server wrote, as text. */
  logs: () => string;
  admin(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  merchant(apiKey: string, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  /** Creates an app through the admin API and returns what its creation showed. */
  createApp(
    overrides?: Record<string, unknown>,
  ): Promise<{ id: string; apiKey: string; webhookSecret: string }>;
  /**
   * Registers fresh merchants with the in-process sandbox and enables `codes` for the app with them
   * (through the admin API); returns the credentials by provider and the channel ids by code.
   */
  enableSandboxChannels(
    appId: string,
    codes: readonly ChannelCode[],
  ): Promise<{
    merchants: Record<Provider, Record<string, unknown>>;
    channels: Partial<Record<ChannelCode, string>>;
  }>;
  count(table: 'apps' | 'api_keys' | 'channels' | 'orders' | 'events' | 'notify_tasks'): Promise<number>;
  close(): Promise<void>;
}

export async function startTestApp(
  backend: Backend,
  env: Record<string, string> = {},
  /** `listen`: serve on a loopback port, for tests where the sandbox calls paycenter back. */
  options: { clock?: Clock; listen?: boolean } = {},
): Promise<TestApp> {
  const clock = new ManualClock('2026-03-01T08:00:00.000Z');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paycenter-test-'));
  const config = loadConfig({
    PAYCENTER_DATA_DIR: dataDir,
    PAYCENTER_MASTER_KEY: randomBytes(32).toString('base64'),
    PAYCENTER_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'debug',
    ...env,
  });
  let logText = '';
  const logStream = new PassThrough();
  logStream.on('data', (chunk: Buffer) => {
    logText += chunk.toString('utf8');
  });
  const database = await createTestDatabase(backend);
  const runtime = await createRuntime(config, { database, clock: options.clock ?? clock, logStream });
  if (options.listen) {
    const address = await runtime.http.listen({ host: '127.0.0.1', port: 0 });
    runtime.setPublicUrl(address);
  }
  const send = (headers: Record<string, string>, method: string, url: string, body?: unknown) =>
    runtime.http.inject({
      method: method as 'GET',
      url,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const app: TestApp = {
    runtime,
    backend,
    clock,
    logs: () => logText,
    admin: (method, url, body) => send({ authorization: `Bearer ${ADMIN_TOKEN}` }, method, url, body),
    merchant: (apiKey, method, url, body) => send({ authorization: `Bearer ${apiKey}` }, method, url, body),
    async createApp(overrides = {}) {
      const res = await app.admin('POST', '/admin-api/apps', {
        name: 'Test shop',
        notifyUrl: 'https://shop.example/paycenter/webhooks',
        ...overrides,
      });
      if (res.statusCode !== 201) throw new Error(`creating an app failed: ${res.statusCode} ${res.body}`);
      return res.json();
    },
    async enableSandboxChannels(appId, codes) {
      const created = await runtime.http.inject({ method: 'POST', url: '/__sandbox/control/merchants' });
      if (created.statusCode !== 201) throw new Error(`the sandbox made no merchants: ${created.body}`);
      const merchants = created.json() as Record<Provider, Record<string, unknown>>;
      const channels: Partial<Record<ChannelCode, string>> = {};
      for (const code of codes) {
        const res = await app.admin('POST', '/admin-api/channels', {
          appId,
          code,
          config: merchants[providerOf(code)],
        });
        if (res.statusCode !== 201) throw new Error(`enabling ${code} failed: ${res.statusCode} ${res.body}`);
        channels[code] = res.json().id;
      }
      return { merchants, channels };
    },
    async count(table) {
      const row = await runtime.database.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    close: async () => {
      await runtime.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return app;
}

/** RSA-2048 key pairs as PEM, made once per process (generation costs ~100 ms). */
let cachedKeys: { privateKey: string; publicKey: string }[] | undefined;
export function rsaKeys(): { privateKey: string; publicKey: string }[] {
  cachedKeys ??= [0, 1].map(() =>
    generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
  );
  return cachedKeys;
}

export function wechatPayConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const [merchant, platform] = rsaKeys();
  return {
    mchId: '1900000109',
    appId: 'wxd678efh567hg6787',
    apiV3Key: 'a'.repeat(32),
    merchantSerialNo: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1',
    merchantPrivateKey: merchant!.privateKey,
    platformPublicKey: platform!.publicKey,
    platformPublicKeyId: 'PUB_KEY_ID_0119000001092024000000000001',
    ...overrides,
  };
}

export function alipayConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const [app, alipay] = rsaKeys();
  return {
    appId: '2021000000000001',
    privateKey: app!.privateKey,
    alipayPublicKey: alipay!.publicKey,
    ...overrides,
  };
}

export function newOrder(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    merchantOrderId: `M${randomBytes(8).toString('hex')}`,
    subject: 'A pot of tea',
    amount: 1234,
    ...overrides,
  };
}
