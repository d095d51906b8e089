import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type NotifyLogger, silentLogger } from './logger.js';

/** What code that commits new notify tasks calls, after the commit, so they are tried at once. */
export interface NotifyWakeup {
  wake(): void;
}

export interface WakeupOptions {
  /** PostgreSQL URL: wake-ups also reach other instances through LISTEN/NOTIFY. Absent (PGlite): this process only. */
  connectionString?: string | undefined;
  /** The LISTEN/NOTIFY channel. */
  channel?: string;
  /** At most one NOTIFY per this many ms, however many wake-ups. Default 20. */
  coalesceMs?: number;
  logger?: NotifyLogger;
}

/**
 * Wake-ups for the notify dispatchers. `wake()` runs this process's listeners at once and tells the
 * other instances with a NOTIFY — never inside the caller's transaction (PostgreSQL serialises the
 * commits of notifying transactions: measured 0.71× throughput at 8 clients, 0.39× at 32), but after
 * it, on this bus's own connection, and coalesced: the first wake-up of a quiet period is sent at
 * once, the rest of a `coalesceMs` window become one trailing NOTIFY. The same connection LISTENs
 * for the other instances' NOTIFYs (its own are recognised and skipped). If the connection drops it
 * is reopened with a backoff; meanwhile the dispatchers' polling covers.
 */
export class WakeupBus implements NotifyWakeup {
  readonly #listeners = new Set<() => void>();
  readonly #connectionString: string | undefined;
  readonly #channel: string;
  readonly #coalesceMs: number;
  readonly #logger: NotifyLogger;
  readonly #instance = randomBytes(8).toString('hex');
  #client: pg.Client | undefined;
  #listening = false;
  #stopped = false;
  #windowOpen = false;
  #pending = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelayMs = 500;
  /** NOTIFYs sent and received from other instances, for tests and metrics. */
  readonly stats = { sent: 0, received: 0 };

  constructor(options: WakeupOptions = {}) {
    this.#connectionString = options.connectionString;
    this.#channel = options.channel ?? 'paycenter_notify';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#channel))
      throw new Error(`invalid channel name ${this.#channel}`);
    this.#coalesceMs = options.coalesceMs ?? 20;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Whether other instances are reached (LISTEN is active). */
  get crossInstance(): boolean {
    return this.#listening;
  }

  /** Opens the LISTEN connection (PostgreSQL only). Failing to connect is logged and retried, not thrown. */
  async start(): Promise<void> {
    this.#stopped = false;
    if (this.#connectionString === undefined || this.#client) return;
    await this.#connect();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  wake(): void {
    this.#fire();
    this.#signalOthers();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#listening = false;
    if (client) await client.end().catch(() => {});
  }

  #fire(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        this.#logger.error({ err: error }, 'notify wake-up listener failed');
      }
    }
  }

  #signalOthers(): void {
    if (!this.#listening || this.#stopped) return;
    if (this.#windowOpen) {
      this.#pending = true;
      return;
    }
    this.#windowOpen = true;
    this.#sendNotify();
    setTimeout(() => {
      this.#windowOpen = false;
      if (this.#pending) {
        this.#pending = false;
        this.#signalOthers();
      }
    }, this.#coalesceMs).unref();
  }

  #sendNotify(): void {
    const client = this.#client;
    if (!client) return;
    this.stats.sent++;
    client.query('SELECT pg_notify($1, $2)', [this.#channel, this.#instance]).catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'sending the notify wake-up failed; other instances will poll');
    });
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#connectionString });
    client.on('notification', (message) => {
      if (message.channel !== this.#channel || message.payload === this.#instance) return;
      this.stats.received++;
      this.#fire();
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, undefined));
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
      if (this.#client !== client) {
        await client.end().catch(() => {});
        return;
      }
      this.#listening = true;
      this.#reconnectDelayMs = 500;
      // Whatever was committed while we were not listening is due now.
      this.#fire();
    } catch (error) {
      this.#lost(client, error);
    }
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#listening = false;
    client.end().catch(() => {});
    if (this.#stopped) return;
    this.#logger.warn(
      { err: error, retryInMs: this.#reconnectDelayMs },
      'the notify LISTEN connection is down; polling until it is back',
    );
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#stopped) void this.#connect();
    }, this.#reconnectDelayMs);
    this.#reconnectTimer.unref();
    this.#reconnectDelayMs = Math.min(this.#reconnectDelayMs * 2, 30_000);
  }
}
