import type { ProviderSimulator, SandboxContext } from '../provider.js';
import { gatewayRoutes } from './gateway.js';
import { type AlipayChannelConfig, type AlipayMerchantRecord, AlipayMerchants } from './merchants.js';
import { AlipayMethods } from './methods.js';
import { AlipayTrades } from './trades.js';

/**
 * A protocol-faithful Alipay OpenAPI (v2 `gateway.do`, public-key mode, RSA2), node:crypto only.
 *
 * - `POST|GET <sandbox>/alipay/gateway.do`: alipay.trade.precreate, pay (bar code), query, close, cancel,
 *   refund, fastpay.refund.query; page.pay / wap.pay opened by the buyer's browser show a cashier page.
 * - `POST <sandbox>/alipay/app-pay`: the order string of alipay.trade.app.pay, as the app hands it to Alipay.
 * - `<sandbox>/alipay/cashier/:tradeNo` (+ `/pay`): the page and wap cashier.
 *
 * Responses are `{"<method>_response":<node>,"sign":"…"}` with `/` escaped as `\/` like the real gateway,
 * the signature covering exactly the node text sent. Notifies are form POSTs retried on Alipay's
 * schedule until the answer is exactly `success`.
 *
 * `alipay.trade.pay` markers: an auth_code ending in `0003` answers 10003 (the trade waits for a
 * control pay or close); one ending in `0004` answers 40004 ACQ.PAYMENT_AUTH_CODE_INVALID.
 */
export interface AlipaySimulatorOptions {
  /** How far a request `timestamp` may be from the sandbox clock (Alipay's own is unpublished). */
  timestampToleranceMs?: number;
}

export const ALIPAY_TIMESTAMP_TOLERANCE_MS = 15 * 60_000;

export interface AlipaySimulator extends ProviderSimulator {
  readonly provider: 'alipay';
  createMerchant(): AlipayChannelConfig & Record<string, unknown>;
  /** Registers a merchant saved from an earlier run (the sandbox keeps nothing across restarts). */
  importMerchant(record: AlipayMerchantRecord): void;
  /** What `importMerchant` needs to recreate this merchant; `undefined` for an unknown app_id. */
  exportMerchant(appId: string): AlipayMerchantRecord | undefined;
}

function checkRecord(record: unknown): AlipayMerchantRecord {
  const r = record as Partial<Record<keyof AlipayMerchantRecord, unknown>> | null;
  if (
    typeof r?.appId !== 'string' ||
    typeof r.sellerId !== 'string' ||
    typeof r.appPublicKey !== 'string' ||
    typeof r.alipayPrivateKey !== 'string'
  ) {
    throw new Error('not an Alipay sandbox merchant record');
  }
  return r as AlipayMerchantRecord;
}

export function createAlipaySimulator(
  context: SandboxContext,
  options: AlipaySimulatorOptions = {},
): AlipaySimulator {
  const merchants = new AlipayMerchants();
  const trades = new AlipayTrades(context, merchants);
  const methods = new AlipayMethods(trades);
  const routes = gatewayRoutes(context, merchants, trades, methods, {
    timestampToleranceMs: options.timestampToleranceMs ?? ALIPAY_TIMESTAMP_TOLERANCE_MS,
  });
  return {
    provider: 'alipay',
    routes,
    createMerchant: () => ({ ...merchants.create(`${context.baseUrl()}/alipay/gateway.do`).config }),
    importMerchant: (record) => {
      merchants.import(record);
    },
    exportMerchant: (appId) => merchants.export(appId),
    exportMerchants: () => merchants.ids().flatMap((id) => merchants.export(id) ?? []),
    importMerchants: (records) => {
      for (const record of records) merchants.import(checkRecord(record));
    },
    pay: (payment, { amount }) => trades.pay(payment, amount),
    close: (payment) => {
      trades.refresh(payment);
      trades.close(payment);
    },
  };
}
