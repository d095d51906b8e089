import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { verifyReturnUrl } from '../../src/public/return-url.js';
import { announceOrderChange } from '../../src/realtime/order-changes.js';
import { OrderFeed } from '../../src/realtime/order-feed.js';
import { backends } from '../helpers/backends.js';
import { type CashierApp, payInSandbox, type Shop, SseClient, startCashierApp, submit } from './helpers.js';

const INSTANCE = fileURLToPath(new URL('./fixtures/instance.ts', import.meta.url));

/** Starts `fixtures/instance.ts` as its own process on the same PostgreSQL database. */
async function startSecondInstance(
  first: CashierApp,
): Promise<{ origin: string; process: ChildProcess; dataDir: string; stderr: () => string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paycenter-second-'));
  const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: first.databaseUrl!,
      PAYCENTER_MASTER_KEY: first.masterKey,
      PAYCENTER_DATA_DIR: dataDir,
      PAYCENTER_SANDBOX: 'false',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const lines = createInterface({ input: child.stdout! });
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the second instance did not start: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`the second instance exited with ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { origin?: string };
        if (parsed.origin) {
          clearTimeout(timer);
          resolve(parsed.origin);
        }
      } catch {
        // Not our line.
      }
    });
  });
  return { origin, process: child, dataDir, stderr: () => stderr };
}

describe.runIf(backends().includes('postgres'))('live status across instances on one PostgreSQL', () => {
  let first: CashierApp;
  let shop: Shop;

  beforeAll(async () => {
    first = await startCashierApp('postgres');
    shop = await first.createShop({ codes: ['wx_native'] });
  });
  afterAll(() => first?.close());

  it('a payment applied by one server process reaches a stream open on another', async () => {
    const second = await startSecondInstance(first);
    try {
      const order = await shop.createOrder();
      const submitted = (await (await submit(first, order, { channelCode: 'wx_native' })).json()) as {
        attempt: { no: string };
      };
      const stream = await SseClient.open(
        `${second.origin}/api/v1/public/orders/${order.id}/events?token=${order.clientToken}`,
      );
      await vi.waitFor(() => expect(stream.events).toHaveLength(1), { timeout: 5000, interval: 10 });
      expect(stream.events[0]!.id).toBe('0-waiting');

      // The sandbox (on the first instance) calls the first instance back; the second only listens.
      const paidAt = Date.now();
      await payInSandbox(first, submitted.attempt.no);
      await stream.ended;
      const latency = Date.now() - paidAt;
      expect(stream.events.map((e) => e.id)).toEqual(['0-waiting', '2-paid']);
      const paid = stream.json(1);
      expect(paid).toMatchObject({ id: order.id, status: 'paid' });
      // The second instance signs the way back with the same app secret.
      expect(verifyReturnUrl(String(paid.returnUrl), shop.webhookSecret).valid).toBe(true);
      expect(latency).toBeLessThan(1000);
    } finally {
      second.process.kill('SIGTERM');
      await new Promise((resolve) => second.process.once('exit', resolve));
      fs.rmSync(second.dataDir, { recursive: true, force: true });
    }
  });

  describe('the feed', () => {
    let other: Database;
    let feed: OrderFeed;

    beforeAll(async () => {
      other = await openDatabase({ kind: 'postgres', url: first.databaseUrl!, poolSize: 2 });
      feed = new OrderFeed(other.db, { connectionString: first.databaseUrl, sweepIntervalMs: 3_600_000 });
      await feed.start();
    });
    afterAll(async () => {
      await feed.stop();
      await other.close();
    });

    it('coalesces a burst of changes into at most two NOTIFYs that carry every order', async () => {
      expect(feed.crossInstance).toBe(true);
      expect(first.live.feed.crossInstance).toBe(true);
      const orders = await Promise.all(Array.from({ length: 40 }, () => shop.createOrder()));
      const seen = new Map<string, number>();
      const unwatch = orders.map((o) =>
        feed.watch(o.id, (row) => seen.set(row.id, (seen.get(row.id) ?? 0) + 1)),
      );
      // Let any trailing NOTIFY of earlier activity pass before counting.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const sentBefore = first.live.feed.stats.sent;
      const receivedBefore = feed.stats.received;
      for (const o of orders) announceOrderChange(first.runtime.database.db, o.id);
      await vi.waitFor(() => expect(seen.size).toBe(orders.length), { timeout: 3000, interval: 10 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One at once (the leading edge), one for the rest of the window (the trailing edge).
      expect(first.live.feed.stats.sent - sentBefore).toBeLessThanOrEqual(2);
      expect(feed.stats.received - receivedBefore).toBeLessThanOrEqual(2);
      for (const off of unwatch) off();
    });

    it('falls back to its sweep when no NOTIFY comes', async () => {
      const quiet = new OrderFeed(other.db, { sweepIntervalMs: 100 });
      await quiet.start();
      try {
        const order = await shop.createOrder();
        const statuses: string[] = [];
        quiet.watch(order.id, (row) => statuses.push(row.status));
        const closed = await first.merchant(shop.apiKey, 'POST', `/api/v1/orders/${order.id}/close`);
        expect(closed.status).toBe(200);
        await vi.waitFor(() => expect(statuses).toContain('closed'), { timeout: 2000, interval: 20 });
        expect(quiet.crossInstance).toBe(false);
      } finally {
        await quiet.stop();
      }
    });
  });
});
