import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { announceOrderChange } from '../../src/realtime/order-changes.js';
import {
  type FeedTransport,
  type FeedTransportEvents,
  MAX_PAYLOAD_BYTES,
  notifyPayloads,
  OrderFeed,
} from '../../src/realtime/order-feed.js';

/** LISTEN/NOTIFY in memory: every payload reaches every connected feed, the sender's own included. */
class Bus {
  readonly payloads: string[] = [];
  readonly #members = new Set<FeedTransportEvents>();

  connect = (events: FeedTransportEvents): FeedTransport => {
    const bus = this;
    let listening = false;
    return {
      get listening() {
        return listening;
      },
      notify(payload) {
        if (!listening) return false;
        if (Buffer.byteLength(payload) >= 8000) throw new Error('PostgreSQL refuses payloads of 8000 bytes');
        bus.payloads.push(payload);
        for (const member of bus.#members) queueMicrotask(() => member.onNotification(payload));
        return true;
      },
      async start() {
        listening = true;
        bus.#members.add(events);
        events.onListening();
      },
      async stop() {
        listening = false;
        bus.#members.delete(events);
      },
    };
  };

  /** The order ids the payloads carried (after each payload's instance tag). */
  idsSent(): string[] {
    return this.payloads.flatMap((payload) => payload.split(' ').slice(1));
  }
}

describe('NOTIFY payloads of the order feed', () => {
  it('carry every id, in order, each payload under the PostgreSQL limit', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => String(9_000_000_000_000_000_000n + BigInt(i)));
    const payloads = notifyPayloads('a1b2c3d4e5f6', ids);
    expect(payloads.length).toBeGreaterThan(1);
    for (const payload of payloads) {
      expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
      expect(payload.startsWith('a1b2c3d4e5f6 ')).toBe(true);
    }
    expect(payloads.flatMap((payload) => payload.split(' ').slice(1))).toEqual(ids);
  });

  it('are none for no ids', () => {
    expect(notifyPayloads('a1b2c3d4e5f6', [])).toEqual([]);
  });
});

describe('the order feed between two instances', () => {
  const COALESCE_MS = 10;
  const ORDERS = 2500;
  let database: Database;
  /** Two handles on one database: what one announces in-process the other hears only by NOTIFY. */
  let paying: Database['db'];
  let watching: Database['db'];
  let ids: string[];
  let bus: Bus;
  let payer: OrderFeed;
  let watcher: OrderFeed;

  beforeAll(async () => {
    database = await openDatabase({ kind: 'pglite', dataDir: null });
    await migrateToLatest(database.db);
    paying = database.db;
    watching = database.db.withoutPlugins();
    const app = await sql<{ id: string }>`
      INSERT INTO apps (name, notify_url, webhook_secret, created_at, updated_at)
      VALUES ('feed', 'https://merchant.example/hook', 'unused', now(), now()) RETURNING id`.execute(paying);
    const inserted = await sql<{ id: string }>`
      INSERT INTO orders (app_id, merchant_order_id, subject, amount, currency, expire_at, client_token, created_at, updated_at)
      SELECT ${app.rows[0]!.id}, 'feed-' || g, 'Feed order', 100, 'CNY', now() + interval '2 hours', md5(g::text), now(), now()
        FROM generate_series(1, ${ORDERS}::int) AS g
      RETURNING id`.execute(paying);
    ids = inserted.rows.map((row) => row.id);
  });
  afterAll(() => database?.close());

  const start = async () => {
    bus = new Bus();
    payer = new OrderFeed(paying, {
      transport: bus.connect,
      coalesceMs: COALESCE_MS,
      sweepIntervalMs: 3_600_000,
    });
    watcher = new OrderFeed(watching, {
      transport: bus.connect,
      coalesceMs: COALESCE_MS,
      sweepIntervalMs: 3_600_000,
    });
    await payer.start();
    await watcher.start();
  };
  afterEach(async () => {
    vi.useRealTimers();
    await payer?.stop();
    await watcher?.stop();
  });

  /** Marks the orders paid, as the paying transaction would, and returns what the watcher hears. */
  const watchAll = (orderIds: readonly string[]) => {
    const heard = new Map<string, string>();
    const unwatch = orderIds.map((id) => watcher.watch(id, (row) => heard.set(row.id, row.status)));
    return {
      heard,
      unwatch: () => {
        for (const off of unwatch) off();
      },
    };
  };
  const pay = (orderIds: readonly string[]) =>
    sql`UPDATE orders SET status = 'paid', paid_at = now() WHERE id = ANY(${[...orderIds]}::bigint[])`.execute(
      paying,
    );

  it('sends a burst of 2,500 changes in chunks under the payload limit, and every id reaches the watchers', async () => {
    await start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const { heard, unwatch } = watchAll(ids);
    await pay(ids);
    for (const id of ids) announceOrderChange(paying, id);
    // The first change of the burst went at once; the rest wait for the window to close.
    expect(bus.payloads).toHaveLength(1);
    vi.advanceTimersByTime(COALESCE_MS);
    expect(bus.payloads.length).toBeGreaterThan(2);
    for (const payload of bus.payloads)
      expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    expect(new Set(bus.idsSent())).toEqual(new Set(ids));
    await vi.waitFor(() => expect(heard.size).toBe(ids.length), { timeout: 10_000, interval: 5 });
    expect(new Set(heard.values())).toEqual(new Set(['paid']));
    // Re-read in batches, not one query per order.
    expect(watcher.stats.reads).toBeLessThanOrEqual(10);
    unwatch();
  });

  it("flushes a burst's last ids at the end of the window, and sends the next quiet change at once", async () => {
    await start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const [first, second, last, later] = ids.slice(0, 4) as [string, string, string, string];
    const { heard, unwatch } = watchAll([first, second, last, later]);
    announceOrderChange(paying, first);
    expect(bus.idsSent()).toEqual([first]);
    announceOrderChange(paying, second);
    announceOrderChange(paying, last);
    vi.advanceTimersByTime(COALESCE_MS - 1);
    expect(bus.idsSent()).toEqual([first]);
    vi.advanceTimersByTime(1);
    expect(bus.idsSent()).toEqual([first, second, last]);
    await vi.waitFor(() => expect(heard.has(last)).toBe(true), { timeout: 5000, interval: 5 });
    // Nothing pending: the window closes without a NOTIFY, and the next change goes at once.
    vi.advanceTimersByTime(COALESCE_MS);
    expect(bus.payloads).toHaveLength(2);
    announceOrderChange(paying, later);
    expect(bus.idsSent()).toEqual([first, second, last, later]);
    await vi.waitFor(() => expect(heard.has(later)).toBe(true), { timeout: 5000, interval: 5 });
    unwatch();
  });

  it('sweeps statuses only, and re-reads an order only when its status moved', async () => {
    const SWEEP_MS = 60_000;
    const quiet = new OrderFeed(watching, { sweepIntervalMs: SWEEP_MS });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    await quiet.start();
    try {
      const [known, unknown] = ids.slice(-2) as [string, string];
      await sql`UPDATE orders SET status = 'waiting', paid_at = NULL WHERE id IN (${known}, ${unknown})`.execute(
        paying,
      );
      const heard: string[] = [];
      quiet.watch(known, (row) => heard.push(`${row.id} ${row.status}`), 'waiting');
      quiet.watch(unknown, (row) => heard.push(`${row.id} ${row.status}`));
      vi.advanceTimersByTime(SWEEP_MS);
      await vi.waitFor(() => expect(quiet.stats.sweeps).toBe(1), { timeout: 5000, interval: 5 });
      // Only the order whose watcher gave no status was re-read (once); the other has not moved.
      await vi.waitFor(() => expect(heard).toEqual([`${unknown} waiting`]), { timeout: 5000, interval: 5 });
      expect(quiet.stats.reads).toBe(1);
      vi.advanceTimersByTime(SWEEP_MS);
      await vi.waitFor(() => expect(quiet.stats.sweeps).toBe(2), { timeout: 5000, interval: 5 });
      expect(quiet.stats.reads).toBe(1);
      // Paid with nobody told: the sweep finds it.
      await pay([known]);
      vi.advanceTimersByTime(SWEEP_MS);
      await vi.waitFor(() => expect(heard).toContain(`${known} paid`), { timeout: 5000, interval: 5 });
      expect(quiet.stats.reads).toBe(2);
    } finally {
      await quiet.stop();
    }
  });

  it('ignores its own NOTIFYs and ids that are not order ids', async () => {
    await start();
    const { heard, unwatch } = watchAll(ids.slice(0, 1));
    announceOrderChange(paying, ids[0]!);
    await vi.waitFor(() => expect(heard.size).toBe(1), { timeout: 5000, interval: 5 });
    expect(payer.stats.received).toBe(0);
    const readsBefore = watcher.stats.reads;
    const stranger = bus.connect({ onNotification: () => {}, onListening: () => {} });
    await stranger.start();
    stranger.notify("other-instance 0 -1 1e3 x'; DROP TABLE orders", () => {});
    await vi.waitFor(() => expect(watcher.stats.received).toBeGreaterThan(0), { timeout: 5000, interval: 5 });
    expect(watcher.stats.reads).toBe(readsBefore);
    unwatch();
  });
});
