import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { CallbackDispatcher, type CallbackMode } from './callbacks.js';
import { Ledger, type Provider, paymentView } from './ledger.js';
import { DemoMerchant, type DemoMerchantOptions } from './merchant/merchant.js';
import { type ProviderSimulator, type SandboxContext, SandboxError } from './provider.js';
import { walletRoutes } from './wallet/wallet.js';

export interface SandboxOptions {
  /** Where the sandbox is reachable, ending in `/__sandbox`; by default taken from each request's Host. */
  baseUrl?: string;
  /** Scales the providers' callback retry delays (1 = real time). */
  timeScale?: number;
  now?: () => Date;
  /**
   * A JSON file that keeps the simulated merchants (their keys) across restarts, so channels
   * configured against the sandbox keep working. Payments are not kept.
   */
  stateFile?: string;
  /**
   * The demo merchant at `/merchant/return` and `/merchant/webhooks`: where it learns the demo app's
   * webhook secret, to verify the signed return URL and the webhooks.
   */
  demoMerchant?: DemoMerchantOptions;
}

export type SimulatorFactory = (context: SandboxContext) => ProviderSimulator;

const CALLBACK_MODES: readonly CallbackMode[] = ['deliver', 'drop', 'duplicate', 'delay'];

/**
 * The simulated WeChat Pay and Alipay, their shared ledger and callback dispatcher, and the control
 * API people and tests use to pay, close and misbehave.
 */
export class Sandbox {
  readonly ledger = new Ledger();
  readonly callbacks: CallbackDispatcher;
  readonly simulators = new Map<Provider, ProviderSimulator>();
  /** The demo merchant the sandbox hosts (its return page and webhook receiver). */
  readonly demoMerchant: DemoMerchant;
  readonly #now: () => Date;
  readonly #stateFile: string | undefined;
  #baseUrl: string | undefined;

  constructor(options: SandboxOptions, factories: SimulatorFactory[]) {
    this.#now = options.now ?? (() => new Date());
    this.#baseUrl = options.baseUrl?.replace(/\/+$/, '');
    this.callbacks = new CallbackDispatcher({ timeScale: options.timeScale ?? 1, now: this.#now });
    const context: SandboxContext = {
      ledger: this.ledger,
      callbacks: this.callbacks,
      now: this.#now,
      baseUrl: () => {
        if (!this.#baseUrl) throw new Error('the sandbox base URL is not known yet');
        return this.#baseUrl;
      },
      timeScale: options.timeScale ?? 1,
    };
    for (const factory of factories) {
      const simulator = factory(context);
      this.simulators.set(simulator.provider, simulator);
    }
    this.#stateFile = options.stateFile;
    this.#loadState();
    this.demoMerchant = new DemoMerchant(options.demoMerchant ?? {}, this.#now);
  }

  #loadState(): void {
    if (!this.#stateFile) return;
    let state: { merchants?: Record<string, unknown[]> };
    try {
      state = JSON.parse(fs.readFileSync(this.#stateFile, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read the sandbox state in ${this.#stateFile}`, { cause: error });
    }
    for (const [provider, simulator] of this.simulators) {
      simulator.importMerchants(state.merchants?.[provider] ?? []);
    }
  }

  #saveState(): void {
    if (!this.#stateFile) return;
    const merchants = Object.fromEntries([...this.simulators].map(([p, sim]) => [p, sim.exportMerchants()]));
    fs.mkdirSync(path.dirname(this.#stateFile), { recursive: true });
    // Written whole and renamed, so a crash never leaves half a file; 0600: it holds private keys.
    const temporary = `${this.#stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify({ merchants }, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(temporary, this.#stateFile);
  }

  /** Where merchants reach the sandbox, once known (a server listening on port 0 learns it late). */
  setBaseUrl(url: string): void {
    this.#baseUrl = url.replace(/\/+$/, '');
  }

  /** Fresh credentials for every provider, each shaped as a paycenter channel config. */
  createMerchants(): Record<string, Record<string, unknown>> {
    const created = Object.fromEntries(
      [...this.simulators].map(([provider, sim]) => [provider, sim.createMerchant()]),
    );
    this.#saveState();
    return created;
  }

  /** The wallet page that pays this payment, if the sandbox knows it (and where it is reachable). */
  walletUrl(outTradeNo: string): string | undefined {
    if (!this.ledger.find(outTradeNo) || !this.#baseUrl) return undefined;
    return `${this.#baseUrl}/wallet/${encodeURIComponent(outTradeNo)}`;
  }

  pay(outTradeNo: string, amount?: number): void {
    const payment = this.ledger.find(outTradeNo);
    if (!payment) throw new SandboxError(404, 'not_found', `no payment ${outTradeNo} in the sandbox`);
    if (payment.status !== 'waiting') {
      throw new SandboxError(409, 'not_payable', `payment ${outTradeNo} is ${payment.status}`);
    }
    this.#simulator(payment.provider).pay(payment, { amount });
  }

  close(outTradeNo: string): void {
    const payment = this.ledger.find(outTradeNo);
    if (!payment) throw new SandboxError(404, 'not_found', `no payment ${outTradeNo} in the sandbox`);
    if (payment.status === 'paid')
      throw new SandboxError(409, 'already_paid', `payment ${outTradeNo} is paid`);
    if (payment.status === 'waiting') this.#simulator(payment.provider).close(payment);
  }

  /** The merchant reroutes an abnormal refund (WeChat), which then succeeds with its callback. */
  rerouteRefund(outTradeNo: string, outRefundNo: string): void {
    const payment = this.ledger.find(outTradeNo);
    if (!payment) throw new SandboxError(404, 'not_found', `no payment ${outTradeNo} in the sandbox`);
    const simulator = this.#simulator(payment.provider);
    if (!simulator.rerouteRefund) {
      throw new SandboxError(409, 'not_supported', `${payment.provider} refunds are never abnormal`);
    }
    simulator.rerouteRefund(payment, outRefundNo);
  }

  #simulator(provider: Provider): ProviderSimulator {
    const simulator = this.simulators.get(provider);
    if (!simulator) throw new Error(`no ${provider} simulator`);
    return simulator;
  }

  /** A Fastify plugin to register with `{ prefix: '/__sandbox' }`. */
  readonly plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onRequest', async (request) => {
      if (!this.#baseUrl) this.#baseUrl = `${request.protocol}://${request.host}/__sandbox`;
    });
    app.setErrorHandler((error, _request, reply) => {
      if (error instanceof SandboxError) {
        return reply.status(error.status).send({ error: { code: error.code, message: error.message } });
      }
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      const message = error instanceof Error ? error.message : String(error);
      return reply
        .status(status)
        .send({ error: { code: status < 500 ? 'invalid_request' : 'internal_error', message } });
    });

    for (const [provider, simulator] of this.simulators) {
      await app.register(simulator.routes, { prefix: `/${provider}` });
    }

    await app.register(walletRoutes({ ledger: this.ledger, pay: (no) => this.pay(no), now: this.#now }));
    await app.register(this.demoMerchant.routes);

    app.post('/control/merchants', async (_request, reply) => reply.status(201).send(this.createMerchants()));

    app.get<{ Params: { outTradeNo: string } }>('/control/payments/:outTradeNo', async (request) => {
      const payment = this.ledger.find(request.params.outTradeNo);
      if (!payment)
        throw new SandboxError(404, 'not_found', `no payment ${request.params.outTradeNo} in the sandbox`);
      return paymentView(payment);
    });

    app.get('/control/payments', async () => ({
      data: this.ledger.all().map(paymentView),
      totals: this.ledger.totals(),
    }));

    app.post<{ Params: { outTradeNo: string }; Body: { amount?: unknown } | undefined }>(
      '/control/payments/:outTradeNo/pay',
      async (request) => {
        const amount = request.body?.amount;
        if (amount !== undefined && (!Number.isSafeInteger(amount) || (amount as number) < 1)) {
          throw new SandboxError(400, 'invalid_request', 'amount must be a positive whole number of fen');
        }
        this.pay(request.params.outTradeNo, amount as number | undefined);
        return paymentView(this.ledger.find(request.params.outTradeNo)!);
      },
    );

    app.post<{ Params: { outTradeNo: string } }>('/control/payments/:outTradeNo/close', async (request) => {
      this.close(request.params.outTradeNo);
      return paymentView(this.ledger.find(request.params.outTradeNo)!);
    });

    app.post<{ Params: { outTradeNo: string; outRefundNo: string } }>(
      '/control/payments/:outTradeNo/refunds/:outRefundNo/reroute',
      async (request) => {
        this.rerouteRefund(request.params.outTradeNo, request.params.outRefundNo);
        return paymentView(this.ledger.find(request.params.outTradeNo)!);
      },
    );

    app.post<{ Body: { mode?: unknown; count?: unknown; delayMs?: unknown } | undefined }>(
      '/control/callbacks',
      async (request) => {
        const { mode, count = 1, delayMs = 0 } = request.body ?? {};
        if (!CALLBACK_MODES.includes(mode as CallbackMode)) {
          throw new SandboxError(400, 'invalid_request', `mode must be one of ${CALLBACK_MODES.join(', ')}`);
        }
        if (!Number.isSafeInteger(count) || (count as number) < 1 || (count as number) > 10_000) {
          throw new SandboxError(400, 'invalid_request', 'count must be a whole number from 1 to 10000');
        }
        if (!Number.isSafeInteger(delayMs) || (delayMs as number) < 0 || (delayMs as number) > 86_400_000) {
          throw new SandboxError(
            400,
            'invalid_request',
            'delayMs must be a whole number of milliseconds up to a day',
          );
        }
        this.callbacks.setMode(mode as CallbackMode, count as number, delayMs as number);
        return { mode, count, delayMs };
      },
    );

    app.get('/control/callbacks', async () => ({
      pendingModes: this.callbacks.pendingModes(),
      callbacks: this.callbacks.callbacks.slice(-200),
      deliveries: this.callbacks.deliveries.slice(-200),
    }));

    // Before the server stops: a callback in flight to the same server must finish while it still answers,
    // or its connection would keep the closing server waiting.
    app.addHook('preClose', async () => this.callbacks.close());
  };
}
