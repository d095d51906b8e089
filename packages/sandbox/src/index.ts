export { createAlipaySimulator } from './alipay/simulator.js';
export {
  ALIPAY_NOTIFY_SCHEDULE,
  CallbackDispatcher,
  type CallbackMode,
  WECHATPAY_CALLBACK_SCHEDULE,
} from './callbacks.js';
export { createSandbox } from './create.js';
export { Ledger, type Provider, paymentView, type SandboxPayment, type SandboxRefund } from './ledger.js';
export {
  DemoMerchant,
  type DemoMerchantOptions,
  type ReceivedWebhook,
} from './merchant/merchant.js';
export { verifyReturn, verifyWebhook } from './merchant/verify.js';
export type { ProviderSimulator, SandboxContext } from './provider.js';
export { Sandbox, type SandboxOptions } from './sandbox.js';
export { safeReturnPath, type WalletHost, walletRoutes } from './wallet/wallet.js';
export { createWechatPaySimulator, type WechatPayChannelConfig } from './wechatpay/simulator.js';
