import type { Kysely } from 'kysely';
import type { MerchantPrincipal } from '../apps/app.service.js';
import type { ChannelService } from '../channels/channel.service.js';
import { ChannelError, type ChannelExtras } from '../channels/channel-client.js';
import type { ChannelClients } from '../channels/channel-clients.js';
import { type ChannelCode, isChannelCode } from '../channels/channel-codes.js';
import { newChannelNo } from '../channels/channel-no.js';
import type { Clock } from '../clock.js';
import type { DB, OrderRow } from '../db/schema.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { addSeconds } from '../jobs/schedules.js';
import * as orderRepo from '../orders/order.repository.js';
import { isRowId } from '../validation.js';
import { applyTrade } from './apply-trade.js';
import * as repo from './attempt.repository.js';
import { type AttemptView, toAttemptView } from './attempt.view.js';
import type { PaymentSync, SyncResult } from './payment-sync.js';

export interface SubmitInput {
  channelCode: string;
  channelExtras?: ChannelExtras | undefined;
}

/** Checks the extras a product needs before anything is written or sent. */
function checkExtras(code: ChannelCode, userIp: string | null, extras: ChannelExtras): void {
  const needs = (field: keyof ChannelExtras, pattern: RegExp, rule: string) => {
    const value = extras[field];
    if (value === undefined) throw invalidRequest(`channelExtras.${field}`, `is required for ${code}`);
    if (!pattern.test(value)) throw invalidRequest(`channelExtras.${field}`, rule);
  };
  if (code === 'wx_jsapi' || code === 'wx_lite') {
    needs('openid', /^[A-Za-z0-9_-]{1,128}$/, "must be the payer's openid under the channel's AppID");
  }
  if (code === 'alipay_bar') needs('authCode', /^\d{16,24}$/, 'must be the 16–24 digit code the payer shows');
  if (code === 'wx_h5') {
    if (userIp === null) {
      throw invalidRequest('userIp', "wx_h5 needs the payer's IP address: create the order with userIp");
    }
    if (extras.h5Type !== undefined && !['iOS', 'Android', 'Wap'].includes(extras.h5Type)) {
      throw invalidRequest('channelExtras.h5Type', 'must be iOS, Android or Wap');
    }
  }
}

export function checkSubmittable(order: OrderRow, now: Date): void {
  if (order.status === 'paid' || order.status === 'refunded') {
    throw new AppError('order_paid', 'this order is already paid');
  }
  if (order.status === 'closed') throw new AppError('order_closed', 'this order is closed');
  if (order.expire_at.getTime() <= now.getTime())
    throw new AppError('order_closed', 'this order has expired');
}

/** What the hosted cashier knows better than the order: the payer's own IP, and the way back to itself. */
export interface SubmitOptions {
  /** Used when the order was created without `userIp` (wx_h5 needs the payer's IP). */
  payerIp?: string | null | undefined;
  /** Where the provider sends the browser after a page payment, instead of the merchant's return URL. */
  returnUrl?: string | undefined;
}

export class SubmitService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly channels: ChannelService,
    private readonly clients: ChannelClients,
    private readonly clock: Clock,
    private readonly urls: { publicUrl: () => string },
    private readonly payments: PaymentSync,
    /** Seconds after a submit before the sync job first asks the channel about it. */
    private readonly firstQueryDelaySeconds: number,
  ) {}

  /**
   * Submits an order to a channel: a new attempt with a fresh number, committed before the channel
   * is called (no call to a channel inside a transaction), then updated with the channel's answer.
   * A refusal leaves the attempt `failed` with the provider's code; nothing is half-written.
   */
  async submit(principal: MerchantPrincipal, orderId: string, input: SubmitInput): Promise<AttemptView> {
    return this.submitForApp(principal.appId, orderId, input);
  }

  /**
   * `submit` for a caller that has already proved which app the order belongs to: the merchant API
   * (by API key) and the paying browser (by the order's client token). Same rules for both.
   */
  async submitForApp(
    appId: string,
    orderId: string,
    input: SubmitInput,
    options: SubmitOptions = {},
  ): Promise<AttemptView> {
    if (!isChannelCode(input.channelCode)) {
      throw invalidRequest('channelCode', `unknown channel code "${input.channelCode}"`);
    }
    const code = input.channelCode;
    const extras = input.channelExtras ?? {};
    const order = isRowId(orderId) ? await orderRepo.findOrder(this.db, appId, orderId) : undefined;
    if (!order) throw notFound('order');
    const now = this.clock.now();
    checkSubmittable(order, now);
    const channel = await this.channels.findForApp(appId, code);
    if (channel?.status !== 'enabled') {
      throw new AppError('channel_unavailable', `${code} is not enabled for this app`);
    }
    const userIp = order.user_ip ?? options.payerIp ?? null;
    checkExtras(code, userIp, extras);

    const attempt = await this.db.transaction().execute(async (trx) => {
      // Holding the order row keeps a concurrent close from missing this attempt.
      const locked = await orderRepo.findOrderByIdForShare(trx, order.id);
      if (!locked) throw notFound('order');
      checkSubmittable(locked, now);
      return repo.insertAttempt(trx, {
        orderId: order.id,
        channelId: channel.id,
        channelCode: code,
        // Sent to the channel as out_trade_no.
        no: newChannelNo('P', now),
        amount: Number(order.amount),
        nextQueryAt: addSeconds(now, this.firstQueryDelaySeconds),
        now,
      });
    });

    const client = this.clients.for(channel);
    let created: Awaited<ReturnType<typeof client.createPayment>>;
    try {
      created = await client.createPayment({
        code,
        outTradeNo: attempt.no,
        amount: Number(attempt.amount),
        subject: order.subject,
        expireAt: order.expire_at,
        notifyUrl: `${this.urls.publicUrl()}/notify/order/${channel.id}`,
        returnUrl: options.returnUrl ?? order.return_url ?? (await this.#appReturnUrl(order.app_id)),
        userIp,
        extras,
      });
    } catch (error) {
      const failure =
        error instanceof ChannelError
          ? { code: error.providerCode, message: error.message }
          : { code: 'INTERNAL_ERROR', message: 'paycenter failed while submitting; see the server log' };
      await repo.failWaitingAttempt(this.db, attempt.id, failure, this.clock.now());
      if (!(error instanceof ChannelError)) throw error;
      throw new AppError(
        'channel_error',
        `${error.provider} answered ${error.providerCode}: ${error.message}`,
        {
          cause: error,
          details: {
            attemptId: attempt.id,
            providerCode: error.providerCode,
            providerMessage: error.message,
          },
        },
      );
    }

    await repo.setAttemptDisplay(
      this.db,
      attempt.id,
      created.display.mode,
      created.display.content,
      this.clock.now(),
    );
    if (created.trade) {
      const applied = await applyTrade(this.db, this.clock, {
        channelId: channel.id,
        trade: created.trade,
      });
      if (applied.result === 'rejected') {
        throw new Error(`the channel's answer to attempt ${attempt.no} was refused: ${applied.reason}`);
      }
    }
    const row = await repo.findAttempt(this.db, order.id, attempt.id);
    if (!row) throw new Error(`attempt ${attempt.id} vanished`);
    return toAttemptView(row);
  }

  /** Asks the channels about the order's waiting attempts (see `PaymentSync.syncOrder`). */
  async sync(appId: string, orderId: string): Promise<SyncResult> {
    const order = isRowId(orderId) ? await orderRepo.findOrder(this.db, appId, orderId) : undefined;
    if (!order) throw notFound('order');
    return this.payments.syncOrder(order.id);
  }

  async list(principal: MerchantPrincipal, orderId: string): Promise<AttemptView[]> {
    const order = isRowId(orderId) ? await orderRepo.findOrder(this.db, principal.appId, orderId) : undefined;
    if (!order) throw notFound('order');
    return (await repo.listAttempts(this.db, order.id)).map(toAttemptView);
  }

  async #appReturnUrl(appId: string): Promise<string | null> {
    const app = await this.db
      .selectFrom('apps')
      .select('return_url')
      .where('id', '=', appId)
      .executeTakeFirst();
    return app?.return_url ?? null;
  }
}
