import type { ProviderSimulator, SandboxContext } from '../provider.js';
import { wechatPayRoutes } from './routes.js';
import { WechatPayService, type WechatPaySimulatorOptions } from './service.js';

export {
  SANDBOX_ABNORMAL_MARKER,
  SANDBOX_CLOSED_MARKER,
  type WechatPayChannelConfig,
  type WechatPaySimulatorOptions,
} from './service.js';

/**
 * A protocol-faithful WeChat Pay API v3 (research §A.6): verifies the merchant's request signatures,
 * signs every answer with the merchant's WeChat Pay public key, keeps orders and refunds in the
 * sandbox ledger and sends encrypted, signed callbacks on WeChat's retry schedule.
 */
export function createWechatPaySimulator(
  context: SandboxContext,
  options: WechatPaySimulatorOptions = {},
): ProviderSimulator {
  const service = new WechatPayService(context, options);
  return {
    provider: 'wechatpay',
    routes: wechatPayRoutes(service),
    createMerchant: () => ({ ...service.createMerchant() }),
    pay: (payment, { amount }) => service.pay(payment, amount),
    close: (payment) => service.closePayment(payment),
    rerouteRefund: (payment, outRefundNo) => service.rerouteAbnormalRefund(payment, outRefundNo),
    exportMerchants: () => service.exportMerchants(),
    importMerchants: (records) => service.importMerchants(records),
  };
}
