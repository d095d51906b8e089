import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ListenConnection } from '../db/listen-connection.js';
import type { DB, OrderRow, OrderStatus } from '../db/schema.js';
import { findOrderStatuses, findOrdersByIds } from '../orders/order.repository.js';
import { isRowId } from '../validation.js';
import { onOrderChange } from './order-changes.js';

/** The part of a pino logger the feed uses. */
export interface FeedLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silent: FeedLogger = { warn: () => {}, error: () => {} };

/**
 * How the feed reaches the other instances: LISTEN/NOTIFY on its own connection (`ListenConnection`),
 * or, in tests, anything that behaves the same.
 */
export interface FeedTransport {
  readonly listening: boolean;
  /** Sends a NOTIFY payload; false when not connected (the others' sweep covers). */
  notify(payload: string, onError: (error: unknown) => void): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface FeedTransportEvents {
  onNotification: (payload: string) => void;
  /** (Re-)connected: whatever changed while deaf is due now. */
  onListening: () => void;
}

export interface OrderFeedOptions {
  /** PostgreSQL URL: changes also travel between instances by LISTEN/NOTIFY. Absent (PGlite): this process only. */
  connectionString?: string | undefined;
  /** The LISTEN/NOTIFY channel. */
  channel?: string;
  /** Instead of LISTEN/NOTIFY on `connectionString`: another transport (tests). */
  transport?: (events: FeedTransportEvents) => FeedTransport;
  /**
   * At most one NOTIFY (carrying every order changed meanwhile) per this many ms: the first change
   * of a quiet period goes at once, the rest of the window in one trailing NOTIFY. Default 10.
   */
  coalesceMs?: number;
  /**
   * Every this many ms the statuses of the watched orders are read, whatever was heard, and the orders
   * whose status moved are re-read: the fallback for a lost NOTIFY, a LISTEN connection that is
   * down, or a change nobody announced. Default 5000.
   */
  sweepIntervalMs?: number;
  logger?: FeedLogger;
}

/** Called with the order as committed, after something may have changed it. May repeat a state. */
export type OrderWatcher = (order: OrderRow) => void;

/** NOTIFY payloads are limited to 8000 bytes; order ids are at most 19 digits (ASCII). */
export const MAX_PAYLOAD_BYTES = 7900;
const READ_BATCH = 500;
const SWEEP_BATCH = 1000;

/**
 * Live order status for this instance's open streams. A change committed here is announced in-process
 * (`order-changes.ts`) and re-read for the streams watching that order at once; the other instances
 * hear of it through one NOTIFY per short window (leading edge at once, the rest of the window as one
 * trailing NOTIFY carrying every order id), sent after the commit on the feed's own connection —
 * never inside the paying transaction, which would serialise every paying commit. The same
 * connection LISTENs for the others' NOTIFYs (its own are recognised and skipped). A periodic sweep
 * reads the status of every watched order, so a lost NOTIFY or a dropped connection delays an update
 * by at most `sweepIntervalMs`; nothing here is needed for correctness, only for speed.
 *
 * The sweep reads only `(id, status)` and compares with the status last handed to the watchers: a
 * thousand idle streams cost one light query every 5 s, and it runs beside the re-reads of changed
 * orders, never ahead of them, so a burst of payments never waits behind a sweep.
 */
export class OrderFeed {
  readonly #db: Kysely<DB>;
  readonly #connection: FeedTransport | undefined;
  readonly #coalesceMs: number;
  readonly #sweepIntervalMs: number;
  #logger: FeedLogger;
  readonly #instance = randomBytes(6).toString('hex');
  readonly #watchers = new Map<string, Set<OrderWatcher>>();
  readonly #toRead = new Set<string>();
  /** The status each watched order's watchers were last given (or told us they have). */
  readonly #seen = new Map<string, OrderStatus>();
  #sweeping = false;
  readonly #outbox = new Set<string>();
  #readScheduled = false;
  #windowOpen = false;
  #started = false;
  #stopped = false;
  #unsubscribeLocal: (() => void) | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** For tests and metrics: NOTIFYs sent, NOTIFYs heard from other instances, batched re-reads, sweeps. */
  readonly stats = { sent: 0, received: 0, reads: 0, sweeps: 0 };

  constructor(db: Kysely<DB>, options: OrderFeedOptions = {}) {
    this.#db = db;
    const events: FeedTransportEvents = {
      onNotification: (payload) => this.#heard(payload),
      // Whatever changed while we were not listening is found by a sweep.
      onListening: () => void this.#sweep(),
    };
    const { connectionString, transport } = options;
    this.#connection = transport
      ? transport(events)
      : connectionString === undefined
        ? undefined
        : new ListenConnection({
            connectionString,
            channel: options.channel ?? 'paycenter_orders',
            ...events,
            logger: { warn: (details, message) => this.#logger.warn(details, message) },
            fallback: 'sweeping',
          });
    this.#coalesceMs = options.coalesceMs ?? 10;
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
    this.#sweepTimer = setInterval(() => void this.#sweep(), this.#sweepIntervalMs);
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

  /**
   * Calls `watcher` with the order whenever it may have changed; returns the unwatch. `seen`: the
   * status the caller already has, so the sweep need not re-read the order until it moves (without
   * it, the next sweep re-reads the order once).
   */
  watch(orderId: string, watcher: OrderWatcher, seen?: OrderStatus): () => void {
    let set = this.#watchers.get(orderId);
    if (!set) {
      set = new Set();
      this.#watchers.set(orderId, set);
      if (seen === undefined) this.#seen.delete(orderId);
      else this.#seen.set(orderId, seen);
    } else if (seen === undefined || this.#seen.get(orderId) !== seen) {
      // The watchers do not all have the same status: the sweep re-reads the order for them.
      this.#seen.delete(orderId);
    }
    set.add(watcher);
    return () => {
      const current = this.#watchers.get(orderId);
      if (!current) return;
      current.delete(watcher);
      if (current.size === 0) {
        this.#watchers.delete(orderId);
        this.#seen.delete(orderId);
      }
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
          const watchers = this.#watchers.get(row.id);
          if (!watchers) continue;
          this.#seen.set(row.id, row.status);
          for (const watcher of watchers) {
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

  /** Reads the statuses of the watched orders and re-reads those whose status moved. */
  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#stopped || this.#watchers.size === 0) return;
    this.#sweeping = true;
    try {
      const ids = [...this.#watchers.keys()];
      for (let i = 0; i < ids.length; i += SWEEP_BATCH) {
        const rows = await findOrderStatuses(this.#db, ids.slice(i, i + SWEEP_BATCH));
        this.#changed(rows.filter((row) => this.#seen.get(row.id) !== row.status).map((row) => row.id));
      }
      this.stats.sweeps++;
    } catch (error) {
      if (!this.#stopped) {
        this.#logger.warn({ err: error }, 'sweeping the watched orders failed; the next sweep retries');
      }
    } finally {
      this.#sweeping = false;
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
    for (const payload of notifyPayloads(this.#instance, ids)) {
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
    this.#changed(ids.filter(isRowId));
  }
}

/**
 * The NOTIFY payloads that carry `ids` from `instance`: `"<instance> <id> <id> …"`, each under
 * `MAX_PAYLOAD_BYTES` (PostgreSQL refuses 8000 bytes and more), so receivers re-read exactly the orders
 * that changed, in one batched query, instead of scanning what they watch.
 */
export function notifyPayloads(instance: string, ids: readonly string[]): string[] {
  const payloads: string[] = [];
  let current = instance;
  for (const id of ids) {
    if (current.length + 1 + id.length > MAX_PAYLOAD_BYTES && current !== instance) {
      payloads.push(current);
      current = instance;
    }
    current += ` ${id}`;
  }
  if (current !== instance) payloads.push(current);
  return payloads;
}
