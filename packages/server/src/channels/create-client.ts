import type { Clock } from '../clock.js';
import { AlipayClient } from './alipay/client.js';
import type { ChannelCredentials } from './channel.service.js';
import type { ChannelClient } from './channel-client.js';
import type { HttpTransport } from './http-transport.js';
import { WechatPayClient } from './wechatpay/client.js';

/** The client for a channel's decrypted credentials; its keys are parsed here, once. */
export function createChannelClient(
  credentials: ChannelCredentials,
  deps: { transport: HttpTransport; clock: Clock },
): ChannelClient {
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
