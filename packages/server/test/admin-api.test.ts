import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './helpers/backends.js';
import { alipayConfig, rsaKeys, startTestApp, type TestApp, wechatPayConfig } from './helpers/harness.js';

describe.each(backends())('admin API on %s', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(backend);
  });
  afterAll(() => t.close());

  describe('apps', () => {
    it('creates an app and shows its API key and webhook secret only at creation', async () => {
      const res = await t.admin('POST', '/admin-api/apps', {
        name: 'Course platform',
        notifyUrl: 'https://courses.example/hooks',
        returnUrl: 'https://courses.example/done',
        notifySchedule: [5, 10],
      });
      expect(res.statusCode).toBe(201);
      const created = res.json();
      expect(created).toEqual({
        id: expect.stringMatching(/^\d+$/),
        name: 'Course platform',
        status: 'active',
        notifyUrl: 'https://courses.example/hooks',
        returnUrl: 'https://courses.example/done',
        notifySchedule: [5, 10],
        autoRefundDuplicates: true,
        apiKey: expect.stringMatching(/^sk_[0-9A-Za-z]{40}$/),
        webhookSecret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
        createdAt: t.clock.now().toISOString(),
        updatedAt: t.clock.now().toISOString(),
      });
      const fetched = await t.admin('GET', `/admin-api/apps/${created.id}`);
      const { apiKey: _k, webhookSecret: _s, ...view } = created;
      expect(fetched.json()).toEqual(view);
      const listed = (await t.admin('GET', '/admin-api/apps')).json();
      expect(listed.data).toContainEqual(view);
      expect(JSON.stringify(listed)).not.toContain(created.apiKey);
      expect(JSON.stringify(listed)).not.toContain(created.webhookSecret);
    });

    it('stores the webhook secret encrypted and the API key as a hash', async () => {
      const created = await t.createApp();
      const row = await t.runtime.database.db
        .selectFrom('apps')
        .selectAll()
        .where('id', '=', created.id)
        .executeTakeFirstOrThrow();
      expect(row.webhook_secret).not.toContain(created.webhookSecret.slice(6));
      expect(await t.runtime.services.apps.webhookSecret(created.id)).toBe(created.webhookSecret);
      const keys = await t.runtime.database.db
        .selectFrom('api_keys')
        .selectAll()
        .where('app_id', '=', created.id)
        .execute();
      expect(keys).toHaveLength(1);
      expect(JSON.stringify(keys)).not.toContain(created.apiKey);
      expect(keys[0]!.prefix).toBe(created.apiKey.slice(0, 12));
    });

    it('updates name, status, URLs and schedule, and clears them with null', async () => {
      const created = await t.createApp({ returnUrl: 'https://a.example/r', notifySchedule: [1] });
      t.clock.advance(1000);
      const res = await t.admin('PATCH', `/admin-api/apps/${created.id}`, {
        name: 'Renamed',
        notifyUrl: 'https://b.example/hook',
        returnUrl: null,
        notifySchedule: null,
        autoRefundDuplicates: false,
        status: 'disabled',
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        name: 'Renamed',
        notifyUrl: 'https://b.example/hook',
        returnUrl: null,
        notifySchedule: null,
        autoRefundDuplicates: false,
        status: 'disabled',
        updatedAt: t.clock.now().toISOString(),
      });
    });

    it('rotates API keys: a new key works beside the old one until the old one is revoked', async () => {
      const created = await t.createApp();
      const second = await t.admin('POST', `/admin-api/apps/${created.id}/api-keys`);
      expect(second.statusCode).toBe(201);
      const newKey = second.json().apiKey as string;
      expect(newKey).toMatch(/^sk_/);
      for (const key of [created.apiKey, newKey]) {
        expect((await t.merchant(key, 'GET', '/api/v1/orders')).statusCode).toBe(200);
      }
      const keys = (await t.admin('GET', `/admin-api/apps/${created.id}/api-keys`)).json().data;
      expect(keys).toHaveLength(2);
      const oldKey = keys.find((k: { prefix: string }) => created.apiKey.startsWith(k.prefix));
      t.clock.advance(5000);
      const revoked = await t.admin('DELETE', `/admin-api/api-keys/${oldKey.id}`);
      expect(revoked.statusCode).toBe(200);
      expect(revoked.json().revokedAt).toBe(t.clock.now().toISOString());
      expect((await t.merchant(created.apiKey, 'GET', '/api/v1/orders')).statusCode).toBe(401);
      expect((await t.merchant(newKey, 'GET', '/api/v1/orders')).statusCode).toBe(200);
      // Revoking again keeps the first revocation time.
      t.clock.advance(5000);
      expect((await t.admin('DELETE', `/admin-api/api-keys/${oldKey.id}`)).json().revokedAt).toBe(
        revoked.json().revokedAt,
      );
      expect((await t.admin('DELETE', '/admin-api/api-keys/999999')).statusCode).toBe(404);
    });

    it('answers 404 for an unknown or malformed app id', async () => {
      for (const id of ['999999', 'abc', '0', '99999999999999999999']) {
        const res = await t.admin('GET', `/admin-api/apps/${id}`);
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('not_found');
      }
    });

    it('refuses every admin call without the admin token', async () => {
      const before = await t.count('apps');
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${'x'.repeat(41)}`, 'Basic abc']) {
        const res = await t.runtime.http.inject({
          method: 'POST',
          url: '/admin-api/apps',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          payload: JSON.stringify({ name: 'x', notifyUrl: 'https://x.example' }),
        });
        expect(res.statusCode).toBe(401);
        expect(res.json().error.code).toBe('unauthorized');
      }
      const merchantKey = (await t.createApp()).apiKey;
      expect((await t.merchant(merchantKey, 'GET', '/admin-api/apps')).statusCode).toBe(401);
      expect(await t.count('apps')).toBe(before + 1);
    });
  });

  describe('channels', () => {
    let appId: string;
    beforeAll(async () => {
      appId = (await t.createApp()).id;
    });

    it('enables a WeChat Pay and an Alipay channel and never returns their credentials', async () => {
      const wx = await t.admin('POST', '/admin-api/channels', {
        appId,
        code: 'wx_native',
        config: wechatPayConfig(),
        feeRate: 60,
      });
      expect(wx.statusCode).toBe(201);
      expect(wx.json()).toEqual({
        id: expect.stringMatching(/^\d+$/),
        appId,
        code: 'wx_native',
        status: 'enabled',
        feeRate: 60,
        createdAt: t.clock.now().toISOString(),
        updatedAt: t.clock.now().toISOString(),
      });
      const ali = await t.admin('POST', '/admin-api/channels', {
        appId,
        code: 'alipay_qr',
        config: alipayConfig(),
      });
      expect(ali.statusCode).toBe(201);
      expect(ali.json().feeRate).toBe(0);
      const listed = await t.admin('GET', `/admin-api/channels?appId=${appId}`);
      expect(listed.json().data.map((c: { code: string }) => c.code)).toEqual(['wx_native', 'alipay_qr']);
      const text = JSON.stringify([
        wx.json(),
        ali.json(),
        listed.json(),
        (await t.admin('GET', `/admin-api/channels/${wx.json().id}`)).json(),
      ]);
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain('apiV3Key');
      // Encrypted at rest; decrypted for the channel clients.
      const row = await t.runtime.database.db
        .selectFrom('channels')
        .select('config')
        .where('id', '=', wx.json().id)
        .executeTakeFirstOrThrow();
      expect(row.config).not.toContain('PRIVATE KEY');
      const credentials = await t.runtime.services.channels.credentials(wx.json().id);
      expect(credentials).toMatchObject({
        provider: 'wechatpay',
        config: { mchId: '1900000109', baseUrl: 'https://api.mch.weixin.qq.com' },
      });
    });

    it('accepts Alipay keys as bare base64, as the Alipay console hands them out', async () => {
      const [appKey, alipayKey] = rsaKeys();
      const bare = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
      const res = await t.admin('POST', '/admin-api/channels', {
        appId,
        code: 'alipay_pc',
        config: alipayConfig({
          privateKey: bare(appKey!.privateKey),
          alipayPublicKey: bare(alipayKey!.publicKey),
        }),
      });
      expect(res.statusCode).toBe(201);
    });

    it('refuses a second channel of the same code for an app', async () => {
      const res = await t.admin('POST', '/admin-api/channels', {
        appId,
        code: 'wx_native',
        config: wechatPayConfig(),
      });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('channel_exists');
    });

    it.each([
      ['missing apiV3Key', 'wx_jsapi', wechatPayConfig({ apiV3Key: undefined }), 'config.apiV3Key'],
      ['short apiV3Key', 'wx_jsapi', wechatPayConfig({ apiV3Key: 'short' }), 'config.apiV3Key'],
      [
        'bad merchant PEM',
        'wx_jsapi',
        wechatPayConfig({
          merchantPrivateKey: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----',
        }),
        'config.merchantPrivateKey',
      ],
      [
        'private key as platform key',
        'wx_jsapi',
        wechatPayConfig({ platformPublicKey: rsaKeys()[0]!.privateKey }),
        'config.platformPublicKey',
      ],
      ['non-numeric mchId', 'wx_jsapi', wechatPayConfig({ mchId: 'abc' }), 'config.mchId'],
      ['unknown field (typo)', 'wx_jsapi', { ...wechatPayConfig(), apiv3key: 'x' }, 'config.apiv3key'],
      ['non-http baseUrl', 'wx_jsapi', wechatPayConfig({ baseUrl: 'file:///etc/passwd' }), 'config.baseUrl'],
      ['WeChat credentials on an Alipay code', 'alipay_wap', wechatPayConfig(), 'config.mchId'],
      [
        'missing alipayPublicKey',
        'alipay_wap',
        alipayConfig({ alipayPublicKey: undefined }),
        'config.alipayPublicKey',
      ],
      ['RSA1 sign type', 'alipay_wap', alipayConfig({ signType: 'RSA' }), 'config.signType'],
      ['config not an object', 'alipay_wap', 'appId=1', 'config'],
    ])(
      'refuses a channel with %s (400 naming the field, nothing written)',
      async (_name, code, config, field) => {
        const before = await t.count('channels');
        const res = await t.admin('POST', '/admin-api/channels', { appId, code, config });
        expect(res.statusCode).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'invalid_request', field });
        expect(res.json().error.message).toContain(field);
        expect(JSON.stringify(res.json())).not.toContain('PRIVATE KEY');
        expect(await t.count('channels')).toBe(before);
      },
    );

    it('refuses an unknown channel code and an unknown app', async () => {
      const unknownCode = await t.admin('POST', '/admin-api/channels', { appId, code: 'paypal', config: {} });
      expect(unknownCode.json().error).toMatchObject({ code: 'invalid_request', field: 'code' });
      const unknownApp = await t.admin('POST', '/admin-api/channels', {
        appId: '999999',
        code: 'wx_h5',
        config: wechatPayConfig(),
      });
      expect(unknownApp.json().error).toMatchObject({ code: 'invalid_request', field: 'appId' });
    });

    it('updates status, fee rate and credentials, validating new credentials', async () => {
      const channel = (
        await t.admin('POST', '/admin-api/channels', { appId, code: 'wx_h5', config: wechatPayConfig() })
      ).json();
      const patched = await t.admin('PATCH', `/admin-api/channels/${channel.id}`, {
        status: 'disabled',
        feeRate: 38,
      });
      expect(patched.json()).toMatchObject({ status: 'disabled', feeRate: 38 });
      const bad = await t.admin('PATCH', `/admin-api/channels/${channel.id}`, {
        config: wechatPayConfig({ apiV3Key: '' }),
      });
      expect(bad.statusCode).toBe(400);
      const good = await t.admin('PATCH', `/admin-api/channels/${channel.id}`, {
        config: wechatPayConfig({ mchId: '1900000110' }),
      });
      expect(good.statusCode).toBe(200);
      expect((await t.runtime.services.channels.credentials(channel.id)).config).toMatchObject({
        mchId: '1900000110',
      });
      expect((await t.admin('PATCH', `/admin-api/channels/${channel.id}`, {})).statusCode).toBe(400);
    });

    it('deletes a channel that never carried a payment', async () => {
      const channel = (
        await t.admin('POST', '/admin-api/channels', { appId, code: 'wx_app', config: wechatPayConfig() })
      ).json();
      expect((await t.admin('DELETE', `/admin-api/channels/${channel.id}`)).statusCode).toBe(204);
      expect((await t.admin('GET', `/admin-api/channels/${channel.id}`)).statusCode).toBe(404);
      expect((await t.admin('DELETE', `/admin-api/channels/${channel.id}`)).statusCode).toBe(404);
    });
  });
});
