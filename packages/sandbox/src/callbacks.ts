import type { Provider } from './ledger.js';

/**
 * Sends the providers' asynchronous callbacks the way the providers do: POST to the merchant's
 * notify URL, success judged by the provider's rule, retries on the provider's schedule (scaled by
 * `timeScale`, so a 24-hour schedule runs in milliseconds in tests). Tests and people can make the
 * next callbacks drop, duplicate or arrive late.
 */
export interface CallbackRequest {
  headers: Record<string, string>;
  body: string;
}

export interface CallbackSpec {
  provider: Provider;
  kind: 'payment' | 'refund';
  outTradeNo: string;
  url: string;
  /** Builds one try's request: WeChat signs every try afresh, Alipay resends the same notify_id. */
  build(): CallbackRequest;
  /** The provider's rule for "the merchant acknowledged". */
  acknowledged(status: number, body: string): boolean;
  /** Seconds between tries after the first. */
  schedule: readonly number[];
}

export type CallbackMode = 'deliver' | 'drop' | 'duplicate' | 'delay';

export interface DeliveryRecord {
  id: number;
  provider: Provider;
  kind: 'payment' | 'refund';
  outTradeNo: string;
  url: string;
  try: number;
  status: number | null;
  acknowledged: boolean;
  error: string | null;
  at: string;
}

export interface CallbackRecord {
  id: number;
  provider: Provider;
  kind: 'payment' | 'refund';
  outTradeNo: string;
  mode: CallbackMode;
  state: 'pending' | 'acknowledged' | 'dropped' | 'gave_up';
  tries: number;
}

export const WECHATPAY_CALLBACK_SCHEDULE: readonly number[] = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];
export const ALIPAY_NOTIFY_SCHEDULE: readonly number[] = [240, 600, 600, 3600, 7200, 21600, 54000];

const ACK_TIMEOUT_MS = 5000;
const HISTORY_LIMIT = 5000;

export interface CallbackOptions {
  /** Multiplies the providers' retry delays: 1 is real time, 0.001 turns hours into seconds. */
  timeScale: number;
  now: () => Date;
}

export class CallbackDispatcher {
  readonly #options: CallbackOptions;
  readonly #modes: { mode: CallbackMode; delayMs: number }[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  /** First tries of 'delay' callbacks still waiting out their delay, so `releaseDelayed` can send them now. */
  readonly #delayed = new Map<NodeJS.Timeout, () => Promise<void>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #waiters: (() => void)[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  readonly callbacks: CallbackRecord[] = [];
  #nextId = 1;
  #nextDeliveryId = 1;
  #closed = false;

  constructor(options: CallbackOptions) {
    this.#options = options;
  }

  /** How the next `count` callbacks behave. Replaces any modes not yet used. */
  setMode(mode: CallbackMode, count = 1, delayMs = 0): void {
    this.#modes.length = 0;
    for (let i = 0; i < count; i++) this.#modes.push({ mode, delayMs });
  }

  pendingModes(): number {
    return this.#modes.length;
  }

  send(spec: CallbackSpec): CallbackRecord {
    const { mode, delayMs } = this.#modes.shift() ?? { mode: 'deliver' as const, delayMs: 0 };
    const record: CallbackRecord = {
      id: this.#nextId++,
      provider: spec.provider,
      kind: spec.kind,
      outTradeNo: spec.outTradeNo,
      mode,
      state: mode === 'drop' ? 'dropped' : 'pending',
      tries: 0,
    };
    this.callbacks.push(record);
    if (this.callbacks.length > HISTORY_LIMIT) this.callbacks.shift();
    if (mode === 'drop') return record;
    if (mode === 'duplicate') {
      // Providers really do send one notification twice at once (two network paths).
      this.#schedule(() => this.#try(spec, record, 1), 0);
      this.#schedule(() => this.#try(spec, record, 1, true), 0);
    } else if (mode === 'delay') {
      const run = () => this.#try(spec, record, 1);
      const timer = this.#schedule(run, delayMs);
      if (timer) this.#delayed.set(timer, run);
    } else {
      this.#schedule(() => this.#try(spec, record, 1), 0);
    }
    return record;
  }

  /**
   * Sends every callback still waiting out a 'delay' now, instead of when its delay ends: a test
   * holds a callback with a long delay until it has moved its clock past the moment that matters
   * (an order's expiry), then lets it arrive late. Returns how many were released.
   */
  releaseDelayed(): number {
    const held = [...this.#delayed];
    this.#delayed.clear();
    for (const [timer, run] of held) {
      clearTimeout(timer);
      this.#timers.delete(timer);
      this.#schedule(run, 0);
    }
    return held.length;
  }

  /** Callbacks held by a 'delay' mode, not yet sent. */
  delayedCount(): number {
    return this.#delayed.size;
  }

  /** Resolves once no callback is in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.#timers.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Sends nothing more and waits for the tries in flight, so no request outlives the sandbox. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#delayed.clear();
    await Promise.allSettled([...this.#inFlight]);
    this.#settleIfIdle();
  }

  #schedule(run: () => Promise<void>, delayMs: number): NodeJS.Timeout | undefined {
    if (this.#closed) return undefined;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#delayed.delete(timer);
      const flight = run().finally(() => {
        this.#inFlight.delete(flight);
        this.#settleIfIdle();
      });
      this.#inFlight.add(flight);
    }, delayMs);
    timer.unref();
    this.#timers.add(timer);
    return timer;
  }

  #settleIfIdle(): void {
    if (this.#timers.size > 0 || this.#inFlight.size > 0) return;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  async #try(spec: CallbackSpec, record: CallbackRecord, tryNo: number, duplicate = false): Promise<void> {
    if (record.state !== 'pending' && !duplicate) return;
    const { headers, body } = spec.build();
    let status: number | null = null;
    let error: string | null = null;
    let acknowledged = false;
    try {
      const response = await fetch(spec.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(ACK_TIMEOUT_MS),
      });
      status = response.status;
      acknowledged = spec.acknowledged(status, await response.text());
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    record.tries += 1;
    this.deliveries.push({
      id: this.#nextDeliveryId++,
      provider: spec.provider,
      kind: spec.kind,
      outTradeNo: spec.outTradeNo,
      url: spec.url,
      try: tryNo,
      status,
      acknowledged,
      error,
      at: this.#options.now().toISOString(),
    });
    if (this.deliveries.length > HISTORY_LIMIT) this.deliveries.shift();
    if (duplicate || this.#closed) return;
    if (acknowledged) {
      record.state = 'acknowledged';
      return;
    }
    const delaySeconds = spec.schedule[tryNo - 1];
    if (delaySeconds === undefined) {
      record.state = 'gave_up';
      return;
    }
    this.#schedule(() => this.#try(spec, record, tryNo + 1), delaySeconds * 1000 * this.#options.timeScale);
  }
}
