import type { Kysely } from 'kysely';
import type { AppService } from '../apps/app.service.js';
import { countAttempts } from '../attempts/attempt.repository.js';
import type { AttemptView } from '../attempts/attempt.view.js';
import type { SubmitService } from '../attempts/submit.service.js';
import type { ChannelService } from '../channels/channel.service.js';
import type { ChannelExtras } from '../channels/channel-client.js';
import type { ChannelCode } from '../channels/channel-codes.js';
import type { Clock } from '../clock.js';
import { constantTimeEqual } from '../crypto/tokens.js';
import type { DB, OrderRow, OrderStatus } from '../db/schema.js';
import { AppError, notFound } from '../errors.js';
import { findOrderById, takePayerCheckTurn } from '../orders/order.repository.js';
import { isRowId } from '../validation.js';
import { qrSvg } from './qr.js';
import { signedReturnUrl } from './return-url.js';

/** What the paying browser may know about its order. */
export interface PublicOrderView {
  id: string;
  status: OrderStatus;
  amount: number;
  currency: string;
  subject: string;
  expireAt: string;
  paidAt: string | null;
  channelCode: string | null;
  /** Once the order is final (paid, closed, refunded): the merchant's return URL, signed (see return-url.ts). */
  returnUrl?: string;
}

/** The channels a payer's browser can use; the others need an app, a mini-program or a scanner. */
export const BROWSER_CHANNELS = [
  'wx_native',
  'wx_jsapi',
  'wx_h5',
  'alipay_pc',
  'alipay_wap',
  'alipay_qr',
] as const satisfies readonly ChannelCode[];
export type BrowserChannel = (typeof BROWSER_CHANNELS)[number];

export function isBrowserChannel(code: string): code is BrowserChannel {
  return (BROWSER_CHANNELS as readonly string[]).includes(code);
}

export const FINAL_STATUSES: readonly OrderStatus[] = ['paid', 'closed', 'refunded'];

export function isFinal(status: OrderStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

/**
 * Statuses only move forward along this rank (waiting → closed → paid → refunded; an order can be
 * paid after it was closed, never the reverse), so a stream can tell "newer" from "already sent".
 */
const RANK: Record<OrderStatus, number> = { waiting: 0, closed: 1, paid: 2, refunded: 3 };

export function statusRank(status: OrderStatus): number {
  return RANK[status];
}

/** The SSE event id of a status: `2-paid`. Its number is the rank, so Last-Event-ID can be compared. */
export function statusEventId(status: OrderStatus): string {
  return `${RANK[status]}-${status}`;
}

/** The rank a Last-Event-ID names, or -1 when it names nothing we sent. */
export function rankOfEventId(id: string | undefined): number {
  const status = (Object.keys(RANK) as OrderStatus[]).find((s) => statusEventId(s) === id?.trim());
  return status === undefined ? -1 : RANK[status];
}

export interface PublicSubmitInput {
  channelCode: string;
  /** wx_jsapi: the payer's openid (from the merchant's WeChat OAuth, passed on the cashier URL). */
  openid?: string | undefined;
}

export interface PayerContext {
  ip: string | null;
  userAgent: string;
}

export interface PublicSubmitResult {
  attempt: Pick<AttemptView, 'id' | 'no' | 'channelCode' | 'status' | 'displayMode' | 'displayContent'>;
  /** For `qr_code`: the QR code as inline SVG. In sandbox mode it leads to the sandbox wallet. */
  qrSvg?: string;
  /** In sandbox mode: the sandbox wallet page where this payment can be paid (and back to the cashier). */
  walletUrl?: string;
}

export interface PublicSyncResult {
  order: PublicOrderView;
  sync: { queried: number; applied: number; failed: number };
}

/** What the cashier page is rendered from. */
export interface CashierFacts {
  order: PublicOrderView;
  appName: string;
  /** The app's enabled channels a browser can pay with. */
  channels: BrowserChannel[];
  now: Date;
}

/** In sandbox mode, where the sandbox's wallet pays a payment (`undefined`: not a sandbox payment). */
export interface SandboxWallet {
  walletUrl(outTradeNo: string): string | undefined;
}

/** "I have paid" asks the channels at most once per this many ms per order. */
export const SYNC_INTERVAL_MS = 5000;
/** The paying browser may start at most this many attempts per order. */
export const MAX_PUBLIC_ATTEMPTS = 20;

/**
 * The paying browser's side of an order, authorised by the order's client token alone: its status,
 * submitting it to one of the app's channels, and "I have paid". Every refusal of the token looks
 * like an unknown order (404), so a token cannot be probed.
 */
export class PublicOrderService {
  /** App reads in flight, shared by every view that needs the same one meanwhile. */
  readonly #reading = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: {
      db: Kysely<DB>;
      apps: AppService;
      channels: ChannelService;
      submissions: SubmitService;
      clock: Clock;
      /** The base URL browsers reach this paycenter at (the cashier's own address is sent to channels). */
      publicUrl: () => string;
      sandbox?: SandboxWallet | undefined;
      syncIntervalMs?: number;
    },
  ) {}

  /** The order, if `token` is its client token; otherwise 404 — the same for a wrong id and a wrong token. */
  async authorize(orderId: string, token: string | undefined): Promise<OrderRow> {
    const row = isRowId(orderId) ? await findOrderById(this.deps.db, orderId) : undefined;
    if (!row || token === undefined || !constantTimeEqual(row.client_token, token)) throw notFound('order');
    return row;
  }

  /** The order as committed now (after `authorize` proved the caller may see it). */
  async find(orderId: string): Promise<OrderRow | undefined> {
    return findOrderById(this.deps.db, orderId);
  }

  async get(orderId: string, token: string | undefined): Promise<PublicOrderView> {
    return this.view(await this.authorize(orderId, token));
  }

  /** The public view; a final order carries its signed return URL (the order's, else the app's), if any. */
  async view(row: OrderRow): Promise<PublicOrderView> {
    const view: PublicOrderView = {
      id: row.id,
      status: row.status,
      amount: Number(row.amount),
      currency: row.currency,
      subject: row.subject,
      expireAt: row.expire_at.toISOString(),
      paidAt: row.paid_at?.toISOString() ?? null,
      channelCode: row.channel_code,
    };
    if (isFinal(row.status)) {
      // A burst of payments for one app becomes one read of the app, not one per paying browser.
      const base = row.return_url ?? (await this.#app(row.app_id)).returnUrl;
      if (base) {
        const secret = await this.#shared(`secret ${row.app_id}`, () =>
          this.deps.apps.webhookSecret(row.app_id),
        );
        view.returnUrl = signedReturnUrl(
          base,
          secret,
          { orderId: row.id, merchantOrderId: row.merchant_order_id, status: row.status },
          this.deps.clock.now(),
        );
      }
    }
    return view;
  }

  async cashier(orderId: string, token: string | undefined): Promise<CashierFacts> {
    const row = await this.authorize(orderId, token);
    const [order, app, channels] = await Promise.all([
      this.view(row),
      // The same read as the view's, for a final order without its own return URL.
      this.#app(row.app_id),
      this.deps.channels.list(row.app_id),
    ]);
    const enabled = new Set(channels.filter((c) => c.status === 'enabled').map((c) => c.code));
    return {
      order,
      appName: app.name,
      channels: BROWSER_CHANNELS.filter((code) => enabled.has(code)),
      now: this.deps.clock.now(),
    };
  }

  /** The cashier's own address, where providers send the browser back after a page payment. */
  cashierUrl(row: OrderRow): string {
    return `${this.deps.publicUrl()}${cashierPath(row)}`;
  }

  /**
   * Submits the order to one of the app's enabled channels, with the merchant submit's rules
   * (`SubmitService.submitForApp`). The cashier fills in what it knows: the payer's IP (wx_h5), the
   * way back to itself after a page payment (Alipay return/quit URLs, WeChat H5's redirect_url).
   */
  async submit(
    orderId: string,
    token: string | undefined,
    input: PublicSubmitInput,
    payer: PayerContext,
  ): Promise<PublicSubmitResult> {
    const row = await this.authorize(orderId, token);
    if (!isBrowserChannel(input.channelCode)) {
      throw new AppError('channel_unavailable', `${input.channelCode} cannot be paid from a browser`);
    }
    const code = input.channelCode;
    const app = await this.deps.apps.get(row.app_id);
    if (app.status !== 'active') throw new AppError('app_disabled', 'this merchant cannot take payments now');
    if ((await countAttempts(this.deps.db, row.id)) >= MAX_PUBLIC_ATTEMPTS) {
      throw new AppError('rate_limited', 'too many payment attempts for this order');
    }
    const cashierUrl = this.cashierUrl(row);
    const extras: ChannelExtras = {};
    if (code === 'wx_jsapi' && input.openid !== undefined) extras.openid = input.openid;
    if (code === 'wx_h5') extras.h5Type = h5TypeOf(payer.userAgent);
    if (code === 'alipay_wap') extras.quitUrl = cashierUrl;
    const attempt = await this.deps.submissions.submitForApp(
      row.app_id,
      row.id,
      { channelCode: code, channelExtras: extras },
      { payerIp: payer.ip, returnUrl: cashierUrl },
    );
    let content = attempt.displayContent;
    if (code === 'wx_h5' && attempt.displayMode === 'url' && content) {
      // WeChat's H5 cashier sends the browser to redirect_url when the payer is done.
      content = `${content}${content.includes('?') ? '&' : '?'}redirect_url=${encodeURIComponent(cashierUrl)}`;
    }
    const walletUrl = this.deps.sandbox?.walletUrl(attempt.no);
    const qrText = attempt.displayMode === 'qr_code' ? (walletUrl ?? content) : null;
    return {
      attempt: {
        id: attempt.id,
        no: attempt.no,
        channelCode: attempt.channelCode,
        status: attempt.status,
        displayMode: attempt.displayMode,
        displayContent: content,
      },
      ...(qrText ? { qrSvg: await qrSvg(qrText) } : {}),
      ...(walletUrl ? { walletUrl: `${walletUrl}?return=${encodeURIComponent(cashierPath(row))}` } : {}),
    };
  }

  /**
   * "I have paid": asks the channels about the order's waiting attempts and applies their answers.
   * At most once per `SYNC_INTERVAL_MS` per order across every instance (the turn is a guarded update
   * of the order row); a press inside the interval answers 429 with Retry-After.
   */
  async sync(orderId: string, token: string | undefined): Promise<PublicSyncResult> {
    const row = await this.authorize(orderId, token);
    const now = this.deps.clock.now();
    const interval = this.deps.syncIntervalMs ?? SYNC_INTERVAL_MS;
    const lastCheck = await takePayerCheckTurn(this.deps.db, row.id, now, interval);
    if (lastCheck !== null) {
      // Another instance's clock may run ahead of ours: never ask for more than one interval.
      const retryAfterMs = Math.min(interval, Math.max(1, interval - (now.getTime() - lastCheck.getTime())));
      throw new AppError(
        'rate_limited',
        `this order was checked less than ${Math.round(interval / 1000)} s ago; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
        { details: { retryAfterMs } },
      );
    }
    let sync = { queried: 0, applied: 0, failed: 0 };
    if (row.status === 'waiting' || row.status === 'closed') {
      const result = await this.deps.submissions.sync(row.app_id, row.id);
      sync = { queried: result.queried, applied: result.applied, failed: result.failures.length };
    }
    const current = (await findOrderById(this.deps.db, row.id)) ?? row;
    return { order: await this.view(current), sync };
  }

  #app(appId: string) {
    return this.#shared(`app ${appId}`, () => this.deps.apps.get(appId));
  }

  /**
   * `load()`, or the same read if one is already in flight: at worst as old as that read, and
   * nothing is kept once it settles (no cache to go stale).
   */
  #shared<T>(key: string, load: () => Promise<T>): Promise<T> {
    const pending = this.#reading.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const started = load().finally(() => this.#reading.delete(key));
    this.#reading.set(key, started);
    return started;
  }
}

/** The cashier's path for an order, token included. */
export function cashierPath(row: Pick<OrderRow, 'id' | 'client_token'>): string {
  return `/cashier/${row.id}?token=${encodeURIComponent(row.client_token)}`;
}

function h5TypeOf(userAgent: string): string {
  if (/iPhone|iPad|iPod/i.test(userAgent)) return 'iOS';
  if (/Android/i.test(userAgent)) return 'Android';
  return 'Wap';
}
