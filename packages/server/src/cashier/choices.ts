import type { BrowserChannel } from '../public/public-order.service.js';

/** Where the payer's browser runs, as far as choosing a way to pay goes. */
export type Device = 'wechat' | 'mobile' | 'desktop';

/** WeChat's in-app browser says `MicroMessenger`; phones and tablets say one of the others. */
export function deviceOf(userAgent: string | undefined): Device {
  const ua = userAgent ?? '';
  if (/MicroMessenger/i.test(ua)) return 'wechat';
  if (/Mobi|Android|iPhone|iPad|iPod|HarmonyOS|Windows Phone/i.test(ua)) return 'mobile';
  return 'desktop';
}

/**
 * What fits each browser: inside WeChat, JSAPI (Alipay is blocked there); other phone browsers hand
 * over to the WeChat or Alipay app; a desktop shows a QR code for the phone, or Alipay's website.
 */
export const FITTING: Record<Device, readonly BrowserChannel[]> = {
  wechat: ['wx_jsapi'],
  mobile: ['wx_h5', 'alipay_wap'],
  desktop: ['wx_native', 'alipay_qr', 'alipay_pc'],
};

/** On a phone whose fitting channels the app has not enabled, a QR code is still payable from another device. */
const PHONE_FALLBACK: readonly BrowserChannel[] = ['wx_native', 'alipay_qr'];

/** The choices to offer, in display order, of those the app has enabled. */
export function choicesFor(device: Device, enabled: readonly BrowserChannel[]): BrowserChannel[] {
  const fitting = FITTING[device].filter((code) => enabled.includes(code));
  if (fitting.length > 0 || device === 'desktop') return fitting;
  return PHONE_FALLBACK.filter((code) => enabled.includes(code));
}
