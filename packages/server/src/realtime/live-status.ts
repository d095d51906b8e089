import type { FastifyPluginAsync } from 'fastify';
import type { Kysely } from 'kysely';
import type { AppService } from '../apps/app.service.js';
import type { SubmitService } from '../attempts/submit.service.js';
import { cashierRoutes } from '../cashier/cashier.routes.js';
import type { ChannelService } from '../channels/channel.service.js';
import type { Clock } from '../clock.js';
import type { DB } from '../db/schema.js';
import { publicRoutes } from '../public/public.routes.js';
import { PublicOrderService, type SandboxWallet } from '../public/public-order.service.js';
import { type FeedLogger, OrderFeed } from './order-feed.js';

/** Stream timings, read when a stream opens (tests shorten them on a running server). */
export interface LiveStatusSettings {
  /** A heartbeat comment every this many ms on an open event stream. Default 15 s. */
  heartbeatMs: number;
  /** The SSE `retry:` hint. Default 3 s. */
  retryMs: number;
  /** A waiting order's stream ends this long after its expiry. Default 60 s. */
  expiredGraceMs: number;
}

export interface LiveStatusOptions {
  db: Kysely<DB>;
  services: { apps: AppService; channels: ChannelService; submissions: SubmitService };
  clock: Clock;
  /** Where browsers and providers reach this instance (the cashier's own URL is sent to the channels). */
  publicUrl: () => string;
  /** PostgreSQL URL for LISTEN/NOTIFY between instances; absent on PGlite (one process). */
  connectionString?: string | undefined;
  /** The provider sandbox, when mounted: QR codes and links lead to its wallet page. */
  sandbox?: SandboxWallet | undefined;
  settings?: Partial<LiveStatusSettings>;
  /** The feed's re-read of every watched order, the fallback for lost NOTIFYs. Default 5 s. */
  sweepIntervalMs?: number;
  coalesceMs?: number;
  logger?: FeedLogger;
}

/** The paying browser's side of paycenter: the order feed, the public API and the cashier page. */
export interface LiveStatus {
  readonly feed: OrderFeed;
  readonly orders: PublicOrderService;
  readonly settings: LiveStatusSettings;
  /** Registers `/api/v1/public/…` and `/cashier/:id`; register it at the root. */
  readonly plugin: FastifyPluginAsync;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createLiveStatus(options: LiveStatusOptions): LiveStatus {
  const feed = new OrderFeed(options.db, {
    connectionString: options.connectionString,
    ...(options.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.coalesceMs === undefined ? {} : { coalesceMs: options.coalesceMs }),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const orders = new PublicOrderService({
    db: options.db,
    apps: options.services.apps,
    channels: options.services.channels,
    submissions: options.services.submissions,
    clock: options.clock,
    publicUrl: options.publicUrl,
    sandbox: options.sandbox,
  });
  const settings: LiveStatusSettings = {
    heartbeatMs: 15_000,
    retryMs: 3000,
    expiredGraceMs: 60_000,
    ...options.settings,
  };
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(publicRoutes, {
      prefix: '/api/v1/public',
      orders,
      feed,
      clock: options.clock,
      settings,
    });
    await app.register(cashierRoutes, { orders, sandbox: options.sandbox !== undefined });
  };
  return { feed, orders, settings, plugin, start: () => feed.start(), stop: () => feed.stop() };
}
