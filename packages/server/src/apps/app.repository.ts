import type { AppRow, AppStatus, Executor } from '../db/schema.js';

export interface ApiKeyRow {
  id: string;
  app_id: string;
  prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}

export async function insertApp(
  db: Executor,
  values: {
    name: string;
    notifyUrl: string;
    returnUrl: string | null;
    notifySchedule: number[] | null;
    autoRefundDuplicates: boolean;
    sealedWebhookSecret: string;
    now: Date;
  },
): Promise<AppRow> {
  return db
    .insertInto('apps')
    .values({
      name: values.name,
      notify_url: values.notifyUrl,
      return_url: values.returnUrl,
      notify_schedule: values.notifySchedule,
      auto_refund_duplicates: values.autoRefundDuplicates,
      webhook_secret: values.sealedWebhookSecret,
      created_at: values.now,
      updated_at: values.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findApp(db: Executor, id: string): Promise<AppRow | undefined> {
  return db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listApps(db: Executor): Promise<AppRow[]> {
  return db.selectFrom('apps').selectAll().orderBy('id').execute();
}

export async function updateApp(
  db: Executor,
  id: string,
  patch: {
    name?: string;
    status?: AppStatus;
    notifyUrl?: string;
    returnUrl?: string | null;
    notifySchedule?: number[] | null;
    autoRefundDuplicates?: boolean;
  },
  now: Date,
): Promise<AppRow | undefined> {
  return db
    .updateTable('apps')
    .set({
      ...(patch.name === undefined ? {} : { name: patch.name }),
      ...(patch.status === undefined ? {} : { status: patch.status }),
      ...(patch.notifyUrl === undefined ? {} : { notify_url: patch.notifyUrl }),
      ...(patch.returnUrl === undefined ? {} : { return_url: patch.returnUrl }),
      ...(patch.notifySchedule === undefined ? {} : { notify_schedule: patch.notifySchedule }),
      ...(patch.autoRefundDuplicates === undefined
        ? {}
        : { auto_refund_duplicates: patch.autoRefundDuplicates }),
      updated_at: now,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function insertApiKey(
  db: Executor,
  values: { appId: string; prefix: string; hash: string; now: Date },
): Promise<ApiKeyRow> {
  return db
    .insertInto('api_keys')
    .values({ app_id: values.appId, prefix: values.prefix, hash: values.hash, created_at: values.now })
    .returning(['id', 'app_id', 'prefix', 'created_at', 'revoked_at'])
    .executeTakeFirstOrThrow();
}

export async function listApiKeys(db: Executor, appId: string): Promise<ApiKeyRow[]> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'app_id', 'prefix', 'created_at', 'revoked_at'])
    .where('app_id', '=', appId)
    .orderBy('id')
    .execute();
}

/** Revokes a key once; revoking it again keeps the first revocation time. */
export async function revokeApiKey(db: Executor, id: string, now: Date): Promise<ApiKeyRow | undefined> {
  await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .execute();
  return db
    .selectFrom('api_keys')
    .select(['id', 'app_id', 'prefix', 'created_at', 'revoked_at'])
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The hot path of every merchant request: one indexed lookup by the key's hash. */
export async function findKeyOwner(
  db: Executor,
  hash: string,
): Promise<{ keyId: string; appId: string; appStatus: AppStatus; revokedAt: Date | null } | undefined> {
  return db
    .selectFrom('api_keys')
    .innerJoin('apps', 'apps.id', 'api_keys.app_id')
    .select([
      'api_keys.id as keyId',
      'api_keys.app_id as appId',
      'apps.status as appStatus',
      'api_keys.revoked_at as revokedAt',
    ])
    .where('api_keys.hash', '=', hash)
    .executeTakeFirst();
}
