import { PGlite } from '@electric-sql/pglite';
import { type Generated, type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../src/db/database.js';

interface Scratch {
  marks: { id: Generated<number>; tag: string };
}

/** Gives other queued work a chance to run, as real awaits inside a transaction do. */
const yieldToOthers = () => new Promise((resolve) => setImmediate(resolve));

describe('embedded PGlite driver', () => {
  let database: Database;
  let db: Kysely<Scratch>;

  beforeAll(async () => {
    database = await openDatabase({ kind: 'pglite', dataDir: null });
    db = database.db as unknown as Kysely<Scratch>;
    await sql`CREATE TABLE marks (id serial PRIMARY KEY, tag text NOT NULL)`.execute(db);
  });
  afterAll(() => database.close());

  const count = async (prefix: string) =>
    Number(
      (
        await db
          .selectFrom('marks')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('tag', 'like', `${prefix}%`)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('keeps every committed row when concurrent transactions roll back', async () => {
    const committing = Array.from({ length: 20 }, (_, i) =>
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('marks')
          .values({ tag: `keep-${i}-a` })
          .execute();
        await yieldToOthers();
        await trx
          .insertInto('marks')
          .values({ tag: `keep-${i}-b` })
          .execute();
      }),
    );
    const failing = Array.from({ length: 20 }, (_, i) =>
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('marks')
          .values({ tag: `drop-${i}` })
          .execute();
        await yieldToOthers();
        throw new Error('roll me back');
      }),
    );
    const lone = Array.from({ length: 20 }, (_, i) =>
      db
        .insertInto('marks')
        .values({ tag: `lone-${i}` })
        .execute(),
    );
    const results = await Promise.allSettled([...committing, ...failing, ...lone]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(20);
    expect(await count('keep-')).toBe(40);
    expect(await count('lone-')).toBe(20);
    expect(await count('drop-')).toBe(0);
  });

  it('lets a transaction see its own writes and no one else see them before commit', async () => {
    let seenInside = -1;
    let seenOutsideBeforeCommit = -1;
    const inside = db.transaction().execute(async (trx) => {
      await trx.insertInto('marks').values({ tag: 'iso-1' }).execute();
      await yieldToOthers();
      seenInside = Number(
        (
          await trx
            .selectFrom('marks')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('tag', '=', 'iso-1')
            .executeTakeFirstOrThrow()
        ).n,
      );
    });
    const outside = count('iso-').then((n) => {
      seenOutsideBeforeCommit = n;
    });
    await Promise.all([inside, outside]);
    expect(seenInside).toBe(1);
    // The lone read waited for the session: it ran after the commit, never inside the transaction.
    expect(seenOutsideBeforeCommit).toBe(1);
  });

  it('returns bigint columns as exact strings, like pg', async () => {
    const row = await sql<{ big: string }>`SELECT 9007199254740993::int8 AS big`.execute(db);
    expect(row.rows[0]?.big).toBe('9007199254740993');
  });

  it('(control) raw PGlite shares one session, so an unserialised lone write is lost with a rollback', async () => {
    // Why the mutex exists: without it, a statement issued while another caller's transaction is
    // open runs inside that transaction and vanishes when it rolls back.
    const raw = new PGlite();
    try {
      await raw.query('CREATE TABLE marks (tag text)');
      await raw.query('BEGIN');
      await raw.query("INSERT INTO marks VALUES ('in-tx')");
      await raw.query("INSERT INTO marks VALUES ('someone-else')");
      await raw.query('ROLLBACK');
      const { rows } = await raw.query<{ n: number }>('SELECT count(*)::int AS n FROM marks');
      expect(rows[0]?.n).toBe(0);
    } finally {
      await raw.close();
    }
  });
});
