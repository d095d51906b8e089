import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';

export type Backend = 'pglite' | 'postgres';

export const backends = (): Backend[] => inject('backends');

/**
 * A new, empty PostgreSQL database on the test server, for one test file: its URL (which a child
 * process can be given too) and how to drop it.
 */
export async function createPostgresDatabase(
  prefix = 'paycenter_test',
): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = inject('testDatabaseUrl');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: testDatabaseUrlFor(name),
    drop: async () => {
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * A fresh, empty database for one test file: in-memory PGlite, or a new PostgreSQL database created
 * for the file and dropped when it closes, so files run in parallel without seeing each other.
 */
export async function createTestDatabase(backend: Backend): Promise<Database> {
  if (backend === 'pglite') return openDatabase({ kind: 'pglite', dataDir: null });
  const postgres = await createPostgresDatabase();
  const database = await openDatabase({ kind: 'postgres', url: postgres.url, poolSize: 30 });
  return {
    ...database,
    db: database.db,
    backend: database.backend,
    description: database.description,
    close: async () => {
      await database.close();
      await postgres.drop();
    },
  };
}

export function testDatabaseUrlFor(name: string): string {
  const url = new URL(inject('testDatabaseUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}
