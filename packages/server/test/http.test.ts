import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_CACHE_MS } from '../src/apps/app.service.js';
import { backends } from './helpers/backends.js';
import {
  ADMIN_TOKEN,
  newOrder,
  rsaKeys,
  startTestApp,
  type TestApp,
  wechatPayConfig,
} from './helpers/harness.js';

describe.each(backends())('HTTP surface on %s', (backend) => {
  let t: TestApp;
  let shop: { id: string; apiKey: string; webhookSecret: string };

  beforeAll(async () => {
    t = await startTestApp(backend, { PAYCENTER_RATE_LIMIT: '40' });
    t.runtime.http.get('/__test/explode', async () => {
      throw new Error('database password is hunter2');
    });
    shop = await t.createApp();
  });
  afterAll(() => t.close());

  it('serves /health and /ready', async () => {
    expect((await t.runtime.http.inject('/health')).json()).toEqual({ status: 'ok' });
    const ready = await t.runtime.http.inject('/ready');
    expect([ready.statusCode, ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  it('answers an unknown route with the error shape', async () => {
    const res = await t.runtime.http.inject('/api/v2/nothing?x=1');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: {
        code: 'not_found',
        message: 'no route for GET /api/v2/nothing',
        requestId: expect.any(String),
      },
    });
  });

  it('masks an internal error and keeps the details in the log', async () => {
    const res = await t.runtime.http.inject('/__test/explode');
    expect(res.statusCode).toBe(500);
    expect(res.json().error).toMatchObject({
      code: 'internal_error',
      message: 'internal error; see the server log',
    });
    expect(res.body).not.toContain('hunter2');
    expect(res.body).not.toContain('at ');
    expect(t.logs()).toContain('request failed');
  });

  it('keeps a sane caller request id and makes one otherwise', async () => {
    const given = await t.runtime.http.inject({ url: '/health', headers: { 'x-request-id': 'shop-7f3a' } });
    expect(given.headers['x-request-id']).toBe('shop-7f3a');
    const hostile = await t.runtime.http.inject({ url: '/health', headers: { 'x-request-id': 'a b\nc' } });
    expect(hostile.headers['x-request-id']).toMatch(/^req_[0-9A-Za-z]{16}$/);
  });

  it('documents every endpoint in the OpenAPI description at /docs', async () => {
    const spec = (await t.runtime.http.inject('/docs/json')).json();
    const paths = Object.keys(spec.paths);
    for (const path of [
      '/api/v1/orders',
      '/api/v1/orders/{id}',
      '/api/v1/orders/{id}/close',
      '/admin-api/apps',
      '/admin-api/apps/{id}',
      '/admin-api/apps/{id}/api-keys',
      '/admin-api/api-keys/{id}',
      '/admin-api/channels',
      '/admin-api/channels/{id}',
      '/health',
      '/ready',
    ]) {
      expect(paths).toContain(path);
    }
    expect((await t.runtime.http.inject('/docs')).statusCode).toBeLessThan(400);
  });

  describe('merchant authentication', () => {
    const attempts: [string, (key: string) => Record<string, string>][] = [
      ['no Authorization header', () => ({})],
      ['an empty bearer', () => ({ authorization: 'Bearer ' })],
      ['a key that is not a key', () => ({ authorization: 'Bearer hello' })],
      ['a well-formed unknown key', () => ({ authorization: `Bearer sk_${'A'.repeat(40)}` })],
      ['the admin token', () => ({ authorization: `Bearer ${ADMIN_TOKEN}` })],
      ['Basic instead of Bearer', (key) => ({ authorization: `Basic ${key}` })],
      [
        'the key with a character changed',
        (key) => ({ authorization: `Bearer ${key.slice(0, -1)}${key.endsWith('a') ? 'b' : 'a'}` }),
      ],
    ];
    it.each(attempts)('refuses %s with 401 and writes nothing', async (_name, headers) => {
      const before = await t.count('orders');
      const res = await t.runtime.http.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: { ...headers(shop.apiKey), 'content-type': 'application/json' },
        payload: JSON.stringify(newOrder()),
      });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
      expect(await t.count('orders')).toBe(before);
    });

    it('refuses a revoked key and answers 403 app_disabled for a disabled app', async () => {
      const app = await t.createApp();
      expect((await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder())).statusCode).toBe(201);
      await t.admin('PATCH', `/admin-api/apps/${app.id}`, { status: 'disabled' });
      const disabled = await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder());
      expect([disabled.statusCode, disabled.json().error.code]).toEqual([403, 'app_disabled']);
      await t.admin('PATCH', `/admin-api/apps/${app.id}`, { status: 'active' });
      const [key] = (await t.admin('GET', `/admin-api/apps/${app.id}/api-keys`)).json().data;
      await t.admin('DELETE', `/admin-api/api-keys/${key.id}`);
      const before = await t.count('orders');
      const revoked = await t.merchant(app.apiKey, 'POST', '/api/v1/orders', newOrder());
      expect([revoked.statusCode, revoked.json().error.code]).toEqual([401, 'unauthorized']);
      expect(await t.count('orders')).toBe(before);
    });

    it('notices a key revoked by another instance within the key cache time', async () => {
      const app = await t.createApp();
      expect((await t.merchant(app.apiKey, 'GET', '/api/v1/orders')).statusCode).toBe(200);
      // Another instance (or the CLI) revokes it: this instance's cache still trusts the key briefly.
      await t.runtime.database.db
        .updateTable('api_keys')
        .set({ revoked_at: t.clock.now() })
        .where('app_id', '=', app.id)
        .execute();
      expect((await t.merchant(app.apiKey, 'GET', '/api/v1/orders')).statusCode).toBe(200);
      t.clock.advance(API_KEY_CACHE_MS + 1);
      expect((await t.merchant(app.apiKey, 'GET', '/api/v1/orders')).statusCode).toBe(401);
    });

    it('rate-limits per API key, not per app or globally', async () => {
      const app = await t.createApp();
      const second = (await t.admin('POST', `/admin-api/apps/${app.id}/api-keys`)).json().apiKey as string;
      const statuses: number[] = [];
      for (let i = 0; i < 41; i++)
        statuses.push((await t.merchant(app.apiKey, 'GET', '/api/v1/orders?limit=1')).statusCode);
      expect(statuses.slice(0, 40).every((s) => s === 200)).toBe(true);
      const limited = await t.merchant(app.apiKey, 'GET', '/api/v1/orders?limit=1');
      expect([limited.statusCode, limited.json().error.code]).toEqual([429, 'rate_limited']);
      expect(limited.headers['retry-after']).toBeDefined();
      expect((await t.merchant(second, 'GET', '/api/v1/orders?limit=1')).statusCode).toBe(200);
    });
  });

  it('never writes a secret into the log', async () => {
    const created = await t.createApp();
    const extraKey = (await t.admin('POST', `/admin-api/apps/${created.id}/api-keys`)).json()
      .apiKey as string;
    const config = wechatPayConfig({ apiV3Key: 'Z'.repeat(32) });
    await t.admin('POST', '/admin-api/channels', { appId: created.id, code: 'wx_native', config });
    await t.admin('POST', '/admin-api/channels', {
      appId: created.id,
      code: 'wx_jsapi',
      config: { ...config, mchId: 'bad' },
    });
    const order = (await t.merchant(created.apiKey, 'POST', '/api/v1/orders', newOrder())).json();
    await t.runtime.http.inject(`/api/v1/orders/${order.id}?token=${order.clientToken}`);
    await t.merchant(`${created.apiKey}x`, 'GET', '/api/v1/orders');
    const logs = t.logs();
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).toContain('incoming request');
    for (const secret of [
      created.apiKey,
      extraKey,
      created.webhookSecret,
      created.webhookSecret.slice(6, 30),
      ADMIN_TOKEN,
      order.clientToken,
      'Z'.repeat(32),
      rsaKeys()[0]!.privateKey.split('\n')[1]!,
      'PRIVATE KEY',
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
