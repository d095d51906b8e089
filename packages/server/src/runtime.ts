import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Sandbox } from 'paycenter-sandbox';
import { AppService } from './apps/app.service.js';
import { PaymentSync } from './attempts/payment-sync.js';
import { SubmitService } from './attempts/submit.service.js';
import { CallbackService } from './callbacks/callback.service.js';
import { ChannelService } from './channels/channel.service.js';
import { ChannelClients } from './channels/channel-clients.js';
import { type HttpTransport, undiciTransport } from './channels/http-transport.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/config.js';
import { resolveAdminToken, resolveMasterKey } from './config/data-dir-secrets.js';
import { SecretBox } from './crypto/secret-box.js';
import { type Database, openDatabase } from './db/database.js';
import { isMigrated, migrateToLatest } from './db/migrate.js';
import { readDemo } from './demo/demo.js';
import { buildHttpServer } from './http/server.js';
import { JobRunner } from './jobs/job-runner.js';
import { lifecycleJobs } from './jobs/lifecycle-jobs.js';
import { DEFAULT_LIFECYCLE_SCHEDULES, type LifecycleSchedules, queryDelaySeconds } from './jobs/schedules.js';
import { NotifyDispatcher } from './notify/dispatcher.js';
import { NotifyService } from './notify/notify.service.js';
import { configureDefaultNotifySchedule } from './notify/schedule.js';
import { WakeupBus } from './notify/wakeup.js';
import { OrderService } from './orders/order.service.js';
import { createLiveStatus, type LiveStatus } from './realtime/live-status.js';
import { onOrderChange } from './realtime/order-changes.js';
import { RefundService } from './refunds/refund.service.js';

export interface Services {
  apps: AppService;
  channels: ChannelService;
  orders: OrderService;
  submissions: SubmitService;
  payments: PaymentSync;
  refunds: RefundService;
  callbacks: CallbackService;
  notify: NotifyService;
}

/** Where channels and browsers reach this instance; known for sure only once it listens (PORT=0). */
export interface PublicUrl {
  publicUrl: () => string;
}

export function createServices(
  database: Database,
  masterKey: Buffer,
  clock: Clock,
  options: {
    urls?: PublicUrl;
    transport?: HttpTransport;
    wakeup?: WakeupBus;
    schedules?: LifecycleSchedules;
  } = {},
): Services {
  const secrets = new SecretBox(masterKey);
  const channels = new ChannelService(database.db, secrets, clock);
  const clients = new ChannelClients(channels, { transport: options.transport ?? undiciTransport(), clock });
  const urls = options.urls ?? { publicUrl: () => 'http://localhost:8080' };
  const schedules = options.schedules ?? DEFAULT_LIFECYCLE_SCHEDULES;
  // The last query of a closed attempt comes as long after its order's expiry as the first query of
  // a new one after its submit.
  const payments = new PaymentSync(
    database.db,
    channels,
    clients,
    clock,
    queryDelaySeconds(schedules.paymentQuery, 0),
  );
  return {
    apps: new AppService(database.db, secrets, clock),
    channels,
    orders: new OrderService(database.db, clock, payments),
    submissions: new SubmitService(
      database.db,
      channels,
      clients,
      clock,
      urls,
      payments,
      queryDelaySeconds(schedules.paymentQuery, 0),
    ),
    payments,
    refunds: new RefundService(
      database.db,
      channels,
      clients,
      clock,
      urls,
      queryDelaySeconds(schedules.refundQuery, 0),
    ),
    callbacks: new CallbackService(database.db, channels, clients, clock),
    notify: new NotifyService(database.db, clock, options.wakeup),
  };
}

export function openConfiguredDatabase(config: Config): Promise<Database> {
  return config.database.kind === 'postgres'
    ? openDatabase({ kind: 'postgres', url: config.database.url })
    : openDatabase({ kind: 'pglite', dataDir: config.dataDir });
}

/** Where the sandbox keeps its simulated merchants, so demo channels survive a restart. */
export function sandboxStateFile(dataDir: string): string {
  return path.join(dataDir, 'sandbox.json');
}

export interface Runtime {
  readonly database: Database;
  readonly services: Services;
  readonly http: FastifyInstance;
  readonly adminTokenFile: string | undefined;
  /** The in-process provider sandbox, when PAYCENTER_SANDBOX is on. */
  readonly sandbox: Sandbox | undefined;
  /** The paying browser's side: live order feed, public order API, cashier page. */
  readonly live: LiveStatus;
  /** The webhook dispatcher; running when the runtime was created with `workers: true`. */
  readonly dispatcher: NotifyDispatcher;
  /** Expiry, payment queries and refunds; running with `workers: true`, or driven by hand (`runOnce`). */
  readonly jobs: JobRunner;
  /** Sets the public base URL once the real address is known (PORT=0 without PAYCENTER_PUBLIC_URL). */
  setPublicUrl(url: string): void;
  close(): Promise<void>;
}

/**
 * Wires one paycenter instance: database (migrated), services, HTTP. The CLI's `start` and the tests
 * both come through here, so what is tested is what runs.
 */
export async function createRuntime(
  config: Config,
  options: {
    clock?: Clock;
    database?: Database;
    logStream?: NodeJS.WritableStream;
    /** Run the background workers (webhook delivery). `paycenter start` does; tests choose. */
    workers?: boolean;
  } = {},
): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  let publicUrl = config.publicUrl;
  const urls: PublicUrl = { publicUrl: () => publicUrl };
  const masterKey = resolveMasterKey(config);
  const admin = resolveAdminToken(config);
  const database = options.database ?? (await openConfiguredDatabase(config));
  try {
    await migrateToLatest(database.db);
    configureDefaultNotifySchedule(config.notifySchedule);
    // Cross-instance wake-ups go through PostgreSQL; embedded mode is one process.
    const wakeup = new WakeupBus({
      connectionString: config.database.kind === 'postgres' ? config.database.url : undefined,
    });
    const services = createServices(database, masterKey, clock, {
      urls,
      wakeup,
      schedules: config.lifecycle,
    });
    // Every committed order change writes a webhook task: try it now, not at the next poll.
    const stopWaking = onOrderChange(database.db, () => wakeup.wake());
    const sandbox = config.sandbox
      ? (await import('paycenter-sandbox')).createSandbox({
          baseUrl: `${publicUrl}/__sandbox`,
          timeScale: config.sandboxTimeScale,
          now: () => clock.now(),
          stateFile: sandboxStateFile(config.dataDir),
          // The sandbox's demo merchant verifies the demo app's webhooks and return URLs.
          demoMerchant: { webhookSecret: () => readDemo(config.dataDir)?.webhookSecret },
        })
      : undefined;
    const live = createLiveStatus({
      db: database.db,
      services,
      clock,
      publicUrl: urls.publicUrl,
      connectionString: config.database.kind === 'postgres' ? config.database.url : undefined,
      sandbox,
    });
    const http = await buildHttpServer({
      config,
      adminToken: admin.token,
      ...services,
      readiness: async () => {
        try {
          return (await isMigrated(database.db))
            ? { ready: true }
            : { ready: false, reason: 'database migrations pending' };
        } catch (error) {
          return {
            ready: false,
            reason: `database unreachable: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
      },
      ...(options.logStream ? { logStream: options.logStream } : {}),
      ...(sandbox ? { sandbox: sandbox.plugin } : {}),
      live: live.plugin,
    });
    live.feed.useLogger(http.log.child({ component: 'live' }));
    const dispatcher = new NotifyDispatcher(
      {
        db: database.db,
        clock,
        webhookSecret: (appId) => services.apps.webhookSecret(appId),
        wakeup,
        logger: http.log.child({ worker: 'notify' }),
      },
      { allowPrivate: config.notifyAllowPrivate },
    );
    const jobs = new JobRunner(
      lifecycleJobs({
        db: database.db,
        clock,
        payments: services.payments,
        refunds: services.refunds,
        schedules: config.lifecycle,
        logger: http.log.child({ worker: 'jobs' }),
      }),
      { intervalMs: config.lifecycle.jobIntervalMs, logger: http.log.child({ worker: 'jobs' }) },
    );
    await wakeup.start();
    await live.start();
    if (options.workers) {
      dispatcher.start();
      jobs.start();
    }
    return {
      database,
      services,
      http,
      sandbox,
      live,
      dispatcher,
      jobs,
      adminTokenFile: admin.file,
      setPublicUrl: (url) => {
        publicUrl = url.replace(/\/+$/, '');
        sandbox?.setBaseUrl(`${publicUrl}/__sandbox`);
      },
      close: async () => {
        await http.close();
        await live.stop();
        await jobs.stop();
        await dispatcher.close();
        stopWaking();
        await wakeup.stop();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
