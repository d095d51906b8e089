import { type Kysely, sql } from 'kysely';

/**
 * Leases for the notify dispatcher. `locked_until` (0001) says until when a claimed task belongs to
 * a dispatcher; `locked_by` says which one, so a dispatcher whose lease ran out (it stalled, another
 * took the task over) cannot complete the task a second time. The claim reads pending tasks by due
 * time; a partial index on the pending rows replaces 0001's (status, next_attempt_at), so that scan
 * stays small however many delivered tasks pile up. (app_id, created_at) serves the per-app listings.
 * Frozen: later changes are new migrations.
 */
const statements = [
  'ALTER TABLE notify_tasks ADD COLUMN locked_by text',
  'DROP INDEX notify_tasks_status_next_attempt_at_idx',
  `CREATE INDEX notify_tasks_due_idx ON notify_tasks (next_attempt_at) WHERE status = 'pending'`,
  'CREATE INDEX notify_tasks_app_id_created_at_idx ON notify_tasks (app_id, created_at)',
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await sql.raw(statement).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const statement of [
    'DROP INDEX IF EXISTS notify_tasks_app_id_created_at_idx',
    'DROP INDEX IF EXISTS notify_tasks_due_idx',
    'CREATE INDEX IF NOT EXISTS notify_tasks_status_next_attempt_at_idx ON notify_tasks (status, next_attempt_at)',
    'ALTER TABLE notify_tasks DROP COLUMN IF EXISTS locked_by',
  ]) {
    await sql.raw(statement).execute(db);
  }
}
