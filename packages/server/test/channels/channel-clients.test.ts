import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelClients } from '../../src/channels/channel-clients.js';
import type { HttpTransport } from '../../src/channels/http-transport.js';
import { startTestApp, type TestApp, wechatPayConfig } from '../helpers/harness.js';

describe('channel client cache', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite');
  });
  afterAll(() => t.close());

  it('reuses a client until the channel credentials change', async () => {
    const app = await t.createApp();
    const channel = (
      await t.admin('POST', '/admin-api/channels', {
        appId: app.id,
        code: 'wx_native',
        config: wechatPayConfig(),
      })
    ).json();
    const transport: HttpTransport = async () => {
      throw new Error('no network in this test');
    };
    const clients = new ChannelClients(t.runtime.services.channels, { transport, clock: t.clock });
    const row = async () => (await t.runtime.services.channels.find(channel.id))!;
    const first = clients.for(await row());
    expect(clients.for(await row())).toBe(first);
    await t.admin('PATCH', `/admin-api/channels/${channel.id}`, { feeRate: 25 });
    expect(clients.for(await row())).toBe(first);
    await t.admin('PATCH', `/admin-api/channels/${channel.id}`, {
      config: wechatPayConfig({ mchId: '1900000222' }),
    });
    const rebuilt = clients.for(await row());
    expect(rebuilt).not.toBe(first);
    expect(clients.for(await row())).toBe(rebuilt);
  });
});
