import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';

export type Backend = 'pglite' | 'postgres';

export const backends = (): Backend[] => inject('backends');

/**
 * A fresh, empty database for one test file: in-memory PGlite, or a new PostgreSQL database created
 * for the file and dropped when it closes, so files run in parallel without seeing each other.
 */
export async function createTestDatabase(backend: Backend): Promise<Database> {
  if (backend === 'pglite') return openDatabase({ kind: 'pglite', dataDir: null });
  const adminUrl = inject('testDatabaseUrl');
  const name = `paycenter_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 30 });
  return {
    ...database,
    db: database.db,
    backend: database.backend,
    description: database.description,
    close: async () => {
      await database.close();
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

export function testDatabaseUrlFor(name: string): string {
  const url = new URL(inject('testDatabaseUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}
