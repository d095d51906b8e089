import type { FastifyPluginAsync } from 'fastify';
import type { CallbackDispatcher } from './callbacks.js';
import type { Ledger, Provider, SandboxPayment } from './ledger.js';

/** What every simulated provider shares with the sandbox around it. */
export interface SandboxContext {
  ledger: Ledger;
  callbacks: CallbackDispatcher;
  now: () => Date;
  /** Where the sandbox is reachable from the merchant, e.g. `http://localhost:8080/__sandbox`. */
  baseUrl: () => string;
  /** Multiplies the providers' delays (callback retries, refund processing): 1 is real time. */
  timeScale: number;
}

export class SandboxError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

export interface ProviderSimulator {
  readonly provider: Provider;
  /** The provider's HTTP API, mounted under `/__sandbox/<provider>`. */
  readonly routes: FastifyPluginAsync;
  /**
   * Fresh merchant credentials, registered with the simulator and returned exactly as paycenter's
   * channel config for this provider.
   */
  createMerchant(): Record<string, unknown>;
  /** The payer pays. `amount` reports a different paid amount, to simulate a tampered or odd callback. */
  pay(payment: SandboxPayment, options: { amount?: number | undefined }): void;
  /** The trade closes without payment (timeout or the payer gave up). */
  close(payment: SandboxPayment): void;
  /**
   * The merchant reroutes a refund the provider could not pay out (WeChat ABNORMAL) in its merchant
   * console; the refund then succeeds. Providers without such a state leave this out.
   */
  rerouteRefund?(payment: SandboxPayment, outRefundNo: string): void;
  /** The merchants' keys, as JSON-safe records, so a restarted sandbox still knows its merchants. */
  exportMerchants(): unknown[];
  /** Registers merchants from `exportMerchants` of an earlier run; a malformed record throws. */
  importMerchants(records: readonly unknown[]): void;
}
