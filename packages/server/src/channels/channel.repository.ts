import type { ChannelRow, ChannelStatus, Executor } from '../db/schema.js';

export async function insertChannel(
  db: Executor,
  values: { appId: string; code: string; feeRate: number; sealedConfig: string; now: Date },
): Promise<ChannelRow> {
  return db
    .insertInto('channels')
    .values({
      app_id: values.appId,
      code: values.code,
      fee_rate: values.feeRate,
      config: values.sealedConfig,
      created_at: values.now,
      updated_at: values.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findChannel(db: Executor, id: string): Promise<ChannelRow | undefined> {
  return db.selectFrom('channels').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findChannelForApp(
  db: Executor,
  appId: string,
  code: string,
): Promise<ChannelRow | undefined> {
  return db
    .selectFrom('channels')
    .selectAll()
    .where('app_id', '=', appId)
    .where('code', '=', code)
    .executeTakeFirst();
}

export async function listChannels(db: Executor, appId: string | undefined): Promise<ChannelRow[]> {
  let query = db.selectFrom('channels').selectAll();
  if (appId !== undefined) query = query.where('app_id', '=', appId);
  return query.orderBy('id').execute();
}

export async function updateChannel(
  db: Executor,
  id: string,
  patch: { status?: ChannelStatus; feeRate?: number; sealedConfig?: string },
  now: Date,
): Promise<ChannelRow | undefined> {
  return db
    .updateTable('channels')
    .set({
      ...(patch.status === undefined ? {} : { status: patch.status }),
      ...(patch.feeRate === undefined ? {} : { fee_rate: patch.feeRate }),
      ...(patch.sealedConfig === undefined ? {} : { config: patch.sealedConfig }),
      updated_at: now,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function channelHasAttempts(db: Executor, id: string): Promise<boolean> {
  const row = await db
    .selectFrom('attempts')
    .select('id')
    .where('channel_id', '=', id)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteChannel(db: Executor, id: string): Promise<boolean> {
  const result = await db.deleteFrom('channels').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
