/**
 * A channel code names the provider and the product: `wx_*` is WeChat Pay API v3, `alipay_*` is the
 * Alipay OpenAPI. The list is closed: the database checks it too.
 */
export const CHANNEL_CODES = [
  'wx_native',
  'wx_jsapi',
  'wx_lite',
  'wx_h5',
  'wx_app',
  'alipay_pc',
  'alipay_wap',
  'alipay_qr',
  'alipay_app',
  'alipay_bar',
] as const;

export type ChannelCode = (typeof CHANNEL_CODES)[number];
export type Provider = 'wechatpay' | 'alipay';

export function isChannelCode(value: string): value is ChannelCode {
  return (CHANNEL_CODES as readonly string[]).includes(value);
}

export function providerOf(code: ChannelCode): Provider {
  return code.startsWith('wx_') ? 'wechatpay' : 'alipay';
}
