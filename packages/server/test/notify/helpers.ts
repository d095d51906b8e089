import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
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

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** The webhook-id header. */
  id: string;
  /** The client's port: one per connection. */
  remotePort: number;
}

export type Reply =
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Drop the connection without an answer. */
  | { destroy: true };

/** The Standard Webhooks headers of a received request, as `Webhook.verify` takes them. */
export function webhookHeaders(request: Received): Record<string, string> {
  return Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(request.headers[h])]),
  );
}

/** A webhook receiver on 127.0.0.1 that records every request and answers as `respond` says. */
export class Receiver {
  readonly requests: Received[] = [];
  respond: (request: Received, index: number) => Reply | Promise<Reply> = () => ({
    status: 200,
    body: 'SUCCESS',
  });
  readonly #server: http.Server;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const received: Received = {
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          id: String(req.headers['webhook-id']),
          remotePort: req.socket.remotePort ?? 0,
        };
        const index = receiver.requests.push(received) - 1;
        const reply = await receiver.respond(received, index);
        if ('destroy' in reply) {
          req.socket.destroy();
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  url(path = '/hooks'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Requests per webhook-id. */
  countsById(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    return counts;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

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
