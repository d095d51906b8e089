import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Clock } from '../../src/clock.js';
import type { DB, EventType } from '../../src/db/schema.js';
import { type RecordedEvent, recordEvent } from '../../src/events/event.repository.js';
import { adminAuth, merchantAuth } from '../../src/http/auth.js';
import { installErrorHandling } from '../../src/http/errors.js';
import { ErrorResponse } from '../../src/http/schemas.js';
import {
  type DispatcherDependencies,
  type DispatcherOptions,
  NotifyDispatcher,
} from '../../src/notify/dispatcher.js';
import { adminNotifyRoutes, notifyRoutes } from '../../src/notify/notify.routes.js';
import type { NotifyService } from '../../src/notify/notify.service.js';
import type { WakeupBus } from '../../src/notify/wakeup.js';
import { ADMIN_TOKEN, type TestApp } from '../helpers/harness.js';
import type { Receiver } from '../helpers/webhook-receiver.js';

/** A promise to hold answers back until the test lets them go. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Makes the receiver hold every answer (200 SUCCESS) until the returned gate opens. */
export function holdAnswers(receiver: Receiver): { open: () => void } {
  const held = gate();
  receiver.respond = async () => {
    await held.wait;
    return { status: 200, body: 'SUCCESS' };
  };
  return held;
}

/** Writes `count` events with their notify tasks in one transaction, as a state change would. */
export async function enqueueEvents(
  db: Kysely<DB>,
  clock: Clock,
  appId: string,
  count: number,
  options: { notifyUrl?: string; type?: EventType } = {},
): Promise<RecordedEvent[]> {
  return db.transaction().execute(async (trx) => {
    const recorded: RecordedEvent[] = [];
    for (let i = 0; i < count; i++) {
      recorded.push(
        await recordEvent(trx, {
          appId,
          type: options.type ?? 'order.paid',
          orderId: null,
          data: { n: i, amount: 1234, status: 'paid', note: '茶 & "quotes"' },
          notifyUrl: options.notifyUrl ?? null,
          channel: { channelId: null, channelCode: null },
          now: clock.now(),
        }),
      );
    }
    return recorded;
  });
}

/** A dispatcher on the test app's database and clock; private addresses allowed (the receiver is local). */
export function dispatcherFor(
  t: TestApp,
  options: DispatcherOptions = {},
  deps: Partial<Pick<DispatcherDependencies, 'clock' | 'webhookSecret' | 'logger'>> & {
    wakeup?: WakeupBus;
  } = {},
): NotifyDispatcher {
  return new NotifyDispatcher(
    {
      db: t.runtime.database.db,
      clock: deps.clock ?? t.clock,
      webhookSecret: deps.webhookSecret ?? ((appId) => t.runtime.services.apps.webhookSecret(appId)),
      wakeup: deps.wakeup,
      logger: deps.logger,
    },
    { allowPrivate: true, metricsLogIntervalMs: 0, ...options },
  );
}

export async function taskRow(db: Kysely<DB>, id: string) {
  return db.selectFrom('notify_tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** The notify_tasks rows of these tasks (as enqueueEvents returned them), in no particular order. */
export async function taskRows(db: Kysely<DB>, recorded: readonly RecordedEvent[]) {
  const ids = recorded.map((r) => r.taskId);
  return db.selectFrom('notify_tasks').selectAll().where('id', 'in', ids).execute();
}

export async function logRows(db: Kysely<DB>, taskId: string) {
  return db.selectFrom('notify_logs').selectAll().where('task_id', '=', taskId).orderBy('id').execute();
}

/** The notify routes mounted the way the server mounts its merchant and admin scopes. */
export async function notifyHttp(t: TestApp, notify: NotifyService): Promise<FastifyInstance> {
  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.addSchema(ErrorResponse);
  installErrorHandling(app);
  await app.register(
    async (admin) => {
      admin.decorateRequest('merchant', null);
      admin.addHook('onRequest', adminAuth(ADMIN_TOKEN));
      await admin.register(adminNotifyRoutes, { notify });
    },
    { prefix: '/admin-api' },
  );
  await app.register(
    async (merchant) => {
      merchant.decorateRequest('merchant', null);
      merchant.addHook('onRequest', merchantAuth(t.runtime.services.apps));
      await merchant.register(notifyRoutes, { notify });
    },
    { prefix: '/api/v1' },
  );
  await app.ready();
  return app;
}
