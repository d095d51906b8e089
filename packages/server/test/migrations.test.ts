import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { isMigrated, MIGRATION_NAMES, migrateToLatest } from '../src/db/migrate.js';
import { backends, createTestDatabase } from './helpers/backends.js';

describe.each(backends())('migrations on %s', (backend) => {
  let database: Database;
  const now = new Date('2026-03-01T08:00:00Z');

  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database.close());

  it('creates the whole data model once and is idempotent', async () => {
    expect(await isMigrated(database.db)).toBe(false);
    expect(await migrateToLatest(database.db)).toEqual(MIGRATION_NAMES);
    expect(await migrateToLatest(database.db)).toEqual([]);
    expect(await isMigrated(database.db)).toBe(true);
    const tables = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`.execute(
      database.db,
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'api_keys',
        'apps',
        'attempts',
        'channels',
        'events',
        'notify_logs',
        'notify_tasks',
        'orders',
        'outbox',
        'refunds',
      ]),
    );
  });

  describe('constraints hold even against code that forgets them', () => {
    let appId: string;
    beforeAll(async () => {
      const app = await database.db
        .insertInto('apps')
        .values({
          name: 'c',
          notify_url: 'https://x.example',
          return_url: null,
          notify_schedule: null,
          webhook_secret: 's',
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      appId = app.id;
    });

    const order = (overrides: Record<string, unknown>) => ({
      app_id: appId,
      merchant_order_id: `m${Math.random().toString(36).slice(2)}`,
      subject: 's',
      amount: 100,
      currency: 'CNY',
      expire_at: now,
      client_token: 't',
      metadata: '{}',
      created_at: now,
      updated_at: now,
      ...overrides,
    });

    const sqlstate = async (work: Promise<unknown>) => {
      try {
        await work;
        return 'ok';
      } catch (error) {
        return (error as { code?: string }).code;
      }
    };

    it.each([
      ['amount of zero', { amount: 0 }, '23514'],
      ['negative amount', { amount: -1 }, '23514'],
      ['unknown status', { status: 'lost' }, '23514'],
      ['paid without paid_at', { status: 'paid' }, '23514'],
      ['refunded more than the amount', { refunded_amount: 101 }, '23514'],
      ['merchant order id with a space', { merchant_order_id: 'a b' }, '23514'],
      ['lower-case currency', { currency: 'cny' }, '23514'],
    ])('refuses an order with %s', async (_name, overrides, code) => {
      expect(
        await sqlstate(
          database.db
            .insertInto('orders')
            .values(order(overrides) as never)
            .execute(),
        ),
      ).toBe(code);
    });

    it('refuses a second order with the same merchant order id in one app', async () => {
      await database.db
        .insertInto('orders')
        .values(order({ merchant_order_id: 'dup-1' }) as never)
        .execute();
      expect(
        await sqlstate(
          database.db
            .insertInto('orders')
            .values(order({ merchant_order_id: 'dup-1' }) as never)
            .execute(),
        ),
      ).toBe('23505');
    });

    it('refuses an unknown channel code and a second channel of one code per app', async () => {
      const channel = (code: string) =>
        database.db
          .insertInto('channels')
          .values({ app_id: appId, code, config: 'x', created_at: now, updated_at: now })
          .execute();
      expect(await sqlstate(channel('paypal'))).toBe('23514');
      expect(await sqlstate(channel('wx_native'))).toBe('ok');
      expect(await sqlstate(channel('wx_native'))).toBe('23505');
    });

    it('refuses an attempt number that WeChat or Alipay would not accept', async () => {
      const o = await database.db
        .insertInto('orders')
        .values(order({}) as never)
        .returning('id')
        .executeTakeFirstOrThrow();
      const ch = await database.db.selectFrom('channels').select('id').executeTakeFirstOrThrow();
      const attempt = (no: string) =>
        database.db
          .insertInto('attempts')
          .values({
            order_id: o.id,
            channel_id: ch.id,
            channel_code: 'wx_native',
            no,
            amount: 100,
            created_at: now,
            updated_at: now,
          })
          .execute();
      expect(await sqlstate(attempt('x'.repeat(33)))).toBe('23514');
      expect(await sqlstate(attempt('has.dot'))).toBe('23514');
      expect(await sqlstate(attempt('P2026_ok-1'))).toBe('ok');
      expect(await sqlstate(attempt('P2026_ok-1'))).toBe('23505');
    });
  });
});
