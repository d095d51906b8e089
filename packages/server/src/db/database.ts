import { createHash } from 'node:crypto';
import path from 'node:path';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { acquireDataDirLock } from './embedded-lock.js';
import { PGliteDialect } from './pglite-driver.js';
import type { DB } from './schema.js';

export type DatabaseTarget =
  | { kind: 'postgres'; url: string; poolSize?: number }
  /** `dataDir: null` keeps the database in memory (tests). */
  | { kind: 'pglite'; dataDir: string | null };

export interface Database {
  readonly db: Kysely<DB>;
  readonly backend: 'postgres' | 'pglite';
  /** Where the data lives, for start-up messages; never contains a password. */
  readonly description: string;
  close(): Promise<void>;
}

/**
 * Names every parameterised statement after a hash of its text, so `pg` prepares it once per
 * connection and later calls skip parsing and planning. Measured on this machine: unnamed
 * statements reach less than half the throughput of prepared ones at 32 clients. Statements
 * without parameters (DDL, multi-statement scripts) stay unnamed, since those cannot be prepared.
 */
class PreparingPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #names = new Map<string, string>();
  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  #nameOf(text: string): string | undefined {
    let name = this.#names.get(text);
    if (name === undefined && this.#names.size < 10_000) {
      name = `k${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      this.#names.set(text, name);
    }
    return name;
  }

  async connect(): Promise<PostgresPoolClient> {
    const client = await this.#pool.connect();
    const query = (text: unknown, values?: readonly unknown[]) => {
      if (typeof text !== 'string') return client.query(text as pg.QueryConfig);
      const name = values && values.length > 0 ? this.#nameOf(text) : undefined;
      return client.query(
        name ? { name, text, values: [...(values ?? [])] } : { text, values: values ? [...values] : [] },
      );
    };
    return { query, release: () => client.release() } as unknown as PostgresPoolClient;
  }

  async end(): Promise<void> {
    await this.#pool.end();
  }
}

function describePostgres(url: string): string {
  const parsed = new URL(url);
  return `PostgreSQL at ${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: target.url, max: target.poolSize ?? 20 });
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    pool.on('error', () => {});
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: new PreparingPool(pool) }) });
    return { db, backend: 'postgres', description: describePostgres(target.url), close: () => db.destroy() };
  }

  const releaseLock = target.dataDir === null ? () => {} : acquireDataDirLock(target.dataDir);
  try {
    const pglite = new PGlite({
      ...(target.dataDir === null ? {} : { dataDir: path.join(target.dataDir, 'pgdata') }),
      // Same shape as `pg`: bigint columns as exact decimal strings.
      parsers: { [pgliteTypes.INT8]: (value: string) => value },
    });
    await pglite.waitReady;
    const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) });
    return {
      db,
      backend: 'pglite',
      description:
        target.dataDir === null
          ? 'embedded PGlite in memory'
          : `embedded PGlite in ${path.relative(process.cwd(), target.dataDir) || '.'}`,
      close: async () => {
        try {
          await db.destroy();
          await pglite.close();
        } finally {
          releaseLock();
        }
      },
    };
  } catch (error) {
    releaseLock();
    throw error;
  }
}
