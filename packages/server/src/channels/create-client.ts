import { AlipayClient } from './alipay/client.js';
import type { ChannelCredentials } from './channel.service.js';
import type { ChannelClient, ChannelClientDeps } from './channel-client.js';
import { WechatPayClient } from './wechatpay/client.js';

/** The client for a channel's decrypted credentials; its keys are parsed here, once. */
export function createChannelClient(credentials: ChannelCredentials, deps: ChannelClientDeps): ChannelClient {
  switch (credentials.provider) {
    case 'wechatpay':
      return new WechatPayClient(credentials.config, deps);
    case 'alipay':
      return new AlipayClient(credentials.config, deps);
    default: {
      const unknown: never = credentials;
      throw new Error(`unknown channel provider ${String((unknown as { provider?: unknown }).provider)}`);
    }
  }
}
