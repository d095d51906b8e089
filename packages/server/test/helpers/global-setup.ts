import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import type { Backend } from './backends.js';

declare module 'vitest' {
  export interface ProvidedContext {
    backends: Backend[];
    testDatabaseUrl: string;
  }
}

/**
 * Decides once which database backends the suite runs on: PGlite always, PostgreSQL when one answers
 * at TEST_DATABASE_URL. On CI an unreachable PostgreSQL is a failure, not a skip.
 */
export default async function setup(project: TestProject): Promise<void> {
  // Child processes (the CLI tests) load the sandbox package from its build, as an installed paycenter does.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', new URL('../../../sandbox', import.meta.url).pathname], {
    stdio: 'inherit',
  });

  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const backends: Backend[] = ['pglite'];
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    backends.push('postgres');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI) throw new Error(`CI needs PostgreSQL at ${url}: ${reason}`);
    console.warn(`PostgreSQL at ${url} is unreachable (${reason}); running on PGlite only`);
  } finally {
    await client.end().catch(() => {});
  }
  const where = new URL(url);
  console.log(
    `database backends: ${backends
      .map((b) =>
        b === 'postgres' ? `postgres (${where.hostname}:${where.port || 5432})` : 'pglite (in memory)',
      )
      .join(', ')}`,
  );
  project.provide('backends', backends);
  project.provide('testDatabaseUrl', url);
}
