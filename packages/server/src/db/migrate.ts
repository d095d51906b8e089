import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely';
import * as initial from './migrations/0001_initial.js';
import * as notifyLease from './migrations/0002_notify_lease.js';
import * as lifecycle from './migrations/0003_lifecycle.js';
import * as payerCheck from './migrations/0004_payer_check.js';
import * as refundHeld from './migrations/0005_refund_held.js';
import * as closedAttemptQuery from './migrations/0006_closed_attempt_query.js';

/** Migrations ship inside the build, in order; names sort as they apply. */
const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_notify_lease': notifyLease,
  '0003_lifecycle': lifecycle,
  '0004_payer_check': payerCheck,
  '0005_refund_held': refundHeld,
  '0006_closed_attempt_query': closedAttemptQuery,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Every migration this build knows, in the order they apply. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations).sort();

export async function migrateToLatest<T>(db: Kysely<T>): Promise<string[]> {
  const migrator = new Migrator({ db: db as Kysely<unknown>, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(
      `database migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when every migration this build knows has been applied. */
export async function isMigrated<T>(db: Kysely<T>): Promise<boolean> {
  const migrator = new Migrator({ db: db as Kysely<unknown>, provider });
  const known = await migrator.getMigrations();
  return known.every((m) => m.executedAt !== undefined);
}
