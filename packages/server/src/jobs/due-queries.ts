import { type Expression, type Kysely, type RawBuilder, type Selectable, type SqlBool, sql } from 'kysely';
import type { DB, Executor } from '../db/schema.js';

/**
 * SQL for "now plus the schedule's delay after this many queries" (the delay list inlined, the last
 * repeating), so a claim moves its rows on in the same statement that picks them.
 */
function nextDueAfterQuery(
  now: Date,
  schedule: readonly number[],
  queryCount: Expression<number>,
): RawBuilder<Date> {
  const delays = sql`ARRAY[${sql.join(schedule.map((s) => sql.lit(Math.round(s))))}]::int[]`;
  return sql<Date>`${now}::timestamptz + make_interval(secs => (${delays})[least(${queryCount} + 2, ${sql.lit(schedule.length)})])`;
}

/** The tables whose waiting rows are asked about on a schedule: `next_query_at`, `query_count`. */
type QueriedTable = 'attempts' | 'refunds';

/**
 * Claims up to `limit` waiting rows of `table` whose next query is due, for one worker: moving
 * `next_query_at` on by the schedule is the claim (other workers skip the locked rows, and then no
 * longer see them as due), and leaves the row due again later if this worker dies before finishing.
 * One statement. `alsoOpen`: rows that are still asked about though no longer waiting (refunds the
 * provider holds); each such set needs its own partial index on `next_query_at`.
 */
export async function claimDueQueries<T extends QueriedTable>(
  db: Executor,
  table: T,
  now: Date,
  limit: number,
  schedule: readonly number[],
  alsoOpen?: RawBuilder<SqlBool>,
): Promise<Selectable<DB[T]>[]> {
  // Both tables have the columns used here; Kysely cannot see that through a union of table names.
  const rows = await (db as Kysely<DB>)
    .updateTable(table as 'attempts')
    .set((eb) => ({
      next_query_at: nextDueAfterQuery(now, schedule, eb.ref('query_count')),
      query_count: eb('query_count', '+', 1),
    }))
    .where('id', 'in', (eb) =>
      eb
        .selectFrom(table as 'attempts')
        .select('id')
        .where((eb) =>
          alsoOpen === undefined
            ? eb('status', '=', 'waiting')
            : eb.or([eb('status', '=', 'waiting'), alsoOpen]),
        )
        .where('next_query_at', '<=', now)
        .orderBy('next_query_at')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returningAll()
    .execute();
  return rows as Selectable<DB[T]>[];
}
