import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ListenConnection } from '../db/listen-connection.js';
import type { DB, OrderRow } from '../db/schema.js';
import { findOrdersByIds } from '../orders/order.repository.js';
import { onOrderChange } from './order-changes.js';

/** The part of a pino logger the feed uses. */
export interface FeedLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silent: FeedLogger = { warn: () => {}, error: () => {} };

export interface OrderFeedOptions {
  /** PostgreSQL URL: changes also travel between instances by LISTEN/NOTIFY. Absent (PGlite): this process only. */
  connectionString?: string | undefined;
  /** The LISTEN/NOTIFY channel. */
  channel?: string;
  /** At most one NOTIFY (carrying every order changed meanwhile) per this many ms. Default 20. */
  coalesceMs?: number;
  /**
   * Every this many ms the watched orders are re-read, whatever was heard: the fallback for a lost
   * NOTIFY, a LISTEN connection that is down, or a change nobody announced. Default 5000.
   */
  sweepIntervalMs?: number;
  logger?: FeedLogger;
}

/** Called with the order as committed, after something may have changed it. May repeat a state. */
export type OrderWatcher = (order: OrderRow) => void;

/** NOTIFY payloads are limited to 8000 bytes; order ids are at most 19 digits. */
const MAX_PAYLOAD_BYTES = 7900;
const READ_BATCH = 500;
const ORDER_ID = /^[1-9]\d{0,18}$/;

/**
 * Live order status for this instance's open streams. A change committed here is announced in-process
 * (`order-changes.ts`) and re-read for the streams watching that order at once; the other instances
 * hear of it through one NOTIFY per short window (leading edge at once, the rest of the window as one
 * trailing NOTIFY carrying every order id), sent after the commit on the feed's own connection —
 * never inside the paying transaction, which would serialise every paying commit. The same
 * connection LISTENs for the others' NOTIFYs (its own are recognised and skipped). A periodic sweep
 * re-reads every watched order, so a lost NOTIFY or a dropped connection delays an update by at most
 * `sweepIntervalMs`; nothing here is needed for correctness, only for speed.
 */
export class OrderFeed {
  readonly #db: Kysely<DB>;
  readonly #connection: ListenConnection | undefined;
  readonly #coalesceMs: number;
  readonly #sweepIntervalMs: number;
  #logger: FeedLogger;
  readonly #instance = randomBytes(6).toString('hex');
  readonly #watchers = new Map<string, Set<OrderWatcher>>();
  readonly #toRead = new Set<string>();
  readonly #outbox = new Set<string>();
  #readScheduled = false;
  #windowOpen = false;
  #started = false;
  #stopped = false;
  #unsubscribeLocal: (() => void) | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** For tests and metrics: NOTIFYs sent, NOTIFYs heard from other instances, batched re-reads. */
  readonly stats = { sent: 0, received: 0, reads: 0 };

  constructor(db: Kysely<DB>, options: OrderFeedOptions = {}) {
    this.#db = db;
    this.#connection =
      options.connectionString === undefined
        ? undefined
        : new ListenConnection({
            connectionString: options.connectionString,
            channel: options.channel ?? 'paycenter_orders',
            onNotification: (payload) => this.#heard(payload),
            // Whatever changed while we were not listening: re-read everything watched.
            onListening: () => this.#changed([...this.#watchers.keys()]),
            logger: { warn: (details, message) => this.#logger.warn(details, message) },
            fallback: 'sweeping',
          });
    this.#coalesceMs = options.coalesceMs ?? 20;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 5000;
    this.#logger = options.logger ?? silent;
  }

  /** Where warnings go; the runtime sets its own once its logger exists. */
  useLogger(logger: FeedLogger): void {
    this.#logger = logger;
  }

  /** Whether changes made on other instances arrive by NOTIFY (else only by the sweep). */
  get crossInstance(): boolean {
    return this.#connection?.listening ?? false;
  }

  /** How many streams are watching, over how many orders. */
  get watching(): { orders: number; watchers: number } {
    let watchers = 0;
    for (const set of this.#watchers.values()) watchers += set.size;
    return { orders: this.#watchers.size, watchers };
  }

  /** Starts listening: in-process announcements, the LISTEN connection (PostgreSQL), the sweep. Never throws for a connection. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#stopped = false;
    this.#unsubscribeLocal = onOrderChange(this.#db, (orderId) => {
      this.#changed([orderId]);
      this.#signalOthers(orderId);
    });
    this.#sweepTimer = setInterval(() => this.#changed([...this.#watchers.keys()]), this.#sweepIntervalMs);
    this.#sweepTimer.unref();
    await this.#connection?.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#started = false;
    this.#unsubscribeLocal?.();
    clearInterval(this.#sweepTimer);
    await this.#connection?.stop();
  }

  /** Calls `watcher` with the order whenever it may have changed; returns the unwatch. */
  watch(orderId: string, watcher: OrderWatcher): () => void {
    let set = this.#watchers.get(orderId);
    if (!set) {
      set = new Set();
      this.#watchers.set(orderId, set);
    }
    set.add(watcher);
    return () => {
      const current = this.#watchers.get(orderId);
      if (!current) return;
      current.delete(watcher);
      if (current.size === 0) this.#watchers.delete(orderId);
    };
  }

  /** Re-reads these orders (those watched here) soon, in one batch with whatever else is due. */
  #changed(orderIds: Iterable<string>): void {
    for (const id of orderIds) if (this.#watchers.has(id)) this.#toRead.add(id);
    if (this.#toRead.size === 0 || this.#readScheduled || this.#stopped) return;
    this.#readScheduled = true;
    setImmediate(() => void this.#read());
  }

  async #read(): Promise<void> {
    const ids = [...this.#toRead];
    this.#toRead.clear();
    try {
      for (let i = 0; i < ids.length; i += READ_BATCH) {
        const rows = await findOrdersByIds(this.#db, ids.slice(i, i + READ_BATCH));
        this.stats.reads++;
        for (const row of rows) {
          for (const watcher of this.#watchers.get(row.id) ?? []) {
            try {
              watcher(row);
            } catch (error) {
              this.#logger.error({ err: error, orderId: row.id }, 'an order status watcher failed');
            }
          }
        }
      }
    } catch (error) {
      if (!this.#stopped) {
        this.#logger.warn({ err: error }, 're-reading watched orders failed; the next sweep retries');
      }
    } finally {
      this.#readScheduled = false;
      if (this.#toRead.size > 0 && !this.#stopped) {
        this.#readScheduled = true;
        setImmediate(() => void this.#read());
      }
    }
  }

  #signalOthers(orderId: string): void {
    if (!this.#connection?.listening || this.#stopped) return;
    this.#outbox.add(orderId);
    if (!this.#windowOpen) this.#flushOutbox();
  }

  #flushOutbox(): void {
    this.#windowOpen = true;
    const ids = [...this.#outbox];
    this.#outbox.clear();
    this.#send(ids);
    setTimeout(() => {
      this.#windowOpen = false;
      if (this.#outbox.size > 0 && this.#connection?.listening && !this.#stopped) this.#flushOutbox();
    }, this.#coalesceMs).unref();
  }

  #send(ids: string[]): void {
    const connection = this.#connection;
    if (!connection || ids.length === 0) return;
    const payloads: string[] = [];
    let current = this.#instance;
    for (const id of ids) {
      if (current.length + 1 + id.length > MAX_PAYLOAD_BYTES) {
        payloads.push(current);
        current = this.#instance;
      }
      current += ` ${id}`;
    }
    payloads.push(current);
    for (const payload of payloads) {
      const sent = connection.notify(payload, (error) => {
        this.#logger.warn(
          { err: error },
          'sending the order-status NOTIFY failed; other instances will sweep',
        );
      });
      if (sent) this.stats.sent++;
    }
  }

  #heard(payload: string): void {
    const [instance, ...ids] = payload.split(' ');
    if (instance === this.#instance) return;
    this.stats.received++;
    this.#changed(ids.filter((id) => ORDER_ID.test(id)));
  }
}
