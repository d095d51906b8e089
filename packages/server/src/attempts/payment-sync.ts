import type { Kysely } from 'kysely';
import type { ChannelService } from '../channels/channel.service.js';
import { type ChannelClient, ChannelError, type TradeSnapshot } from '../channels/channel-client.js';
import type { ChannelClients } from '../channels/channel-clients.js';
import type { Clock } from '../clock.js';
import type { AttemptRow, DB, OrderRow } from '../db/schema.js';
import { AppError } from '../errors.js';
import { recordEvent } from '../events/event.repository.js';
import * as orderRepo from '../orders/order.repository.js';
import { toOrderView } from '../orders/order.service.js';
import { announceOrderChange } from '../realtime/order-changes.js';
import { type ApplyResult, applyTrade } from './apply-trade.js';
import * as repo from './attempt.repository.js';

/** What asking the channels about an order's waiting attempts found. */
export interface SyncResult {
  /** Waiting attempts asked about. */
  queried: number;
  /** Answers that changed our books (paid, or an attempt closed). */
  applied: number;
  /** Channels that could not answer; the order stays as it was for those. */
  failures: { attemptNo: string; providerCode: string; message: string }[];
}

/** At most this many waiting attempts (the newest) are asked about per sync. */
const SYNC_MAX_ATTEMPTS = 5;

/** Closing gives up after this many rounds of "a new attempt appeared while we closed the others". */
const CLOSE_ROUNDS = 3;

/** How closing an attempt ended: it turned out paid (applied), or it can no longer be paid. */
type AttemptCloseOutcome = 'paid' | 'closed';

interface CloseOrderResult {
  order: OrderRow;
  /** True when this call closed the order; false when it was already closed, or was found paid. */
  closed: boolean;
}

/**
 * Asking the channel instead of waiting for it: a lost callback, "I have paid", an order about to be
 * closed. Every answer goes through `applyTrade`, exactly like a callback, so a query and a callback
 * for the same payment, in any order, change the books once.
 */
export class PaymentSync {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly channels: ChannelService,
    private readonly clients: ChannelClients,
    private readonly clock: Clock,
    /** Seconds after its order's expiry for the last query of an attempt closed while unknown to its channel. */
    private readonly lastQueryDelaySeconds: number,
  ) {}

  /**
   * The last query of an attempt closed while unknown to its channel: a payment made since is applied
   * (to a closed order: the payer paid); one opened but still unpaid is closed at the channel now;
   * then nothing more is asked. A channel that cannot answer leaves it due on the query schedule.
   */
  async lastQuery(attempt: AttemptRow): Promise<void> {
    const { trade } = await this.queryAttempt(attempt);
    if (trade.state === 'waiting') await this.closeAttempt(attempt);
    await repo.endLastQuery(this.db, attempt.id);
  }

  /** Asks the channel about one attempt and applies the answer. Throws ChannelError when it cannot answer. */
  async queryAttempt(attempt: AttemptRow): Promise<{ trade: TradeSnapshot; applied: ApplyResult }> {
    return this.#query(attempt, await this.#client(attempt));
  }

  async #query(
    attempt: AttemptRow,
    channel: AttemptChannel,
  ): Promise<{ trade: TradeSnapshot; applied: ApplyResult }> {
    const trade = await channel.client.queryPayment(attempt.no);
    const applied = await applyTrade(this.db, this.clock, {
      channelId: channel.channelId,
      trade,
    });
    return { trade, applied };
  }

  /**
   * Makes sure an attempt can no longer be paid. The channel is asked first, because "already paid"
   * wins: that payment is applied. Otherwise the payment is closed at the channel and then here. If
   * closing fails because the payer paid in between, the second query applies that payment.
   */
  async closeAttempt(attempt: AttemptRow): Promise<AttemptCloseOutcome> {
    const channel = await this.#client(attempt);
    const first = await this.#query(attempt, channel);
    if (first.trade.state === 'paid') return paidOrRefused(attempt, first);
    // Already closed there: the query's answer has closed it here too.
    if (first.trade.state === 'closed') return 'closed';
    try {
      await channel.client.closePayment(attempt.no);
    } catch (error) {
      if (!(error instanceof ChannelError) || error.kind !== 'rejected') throw error;
      const second = await this.#query(attempt, channel);
      if (second.trade.state === 'paid') return paidOrRefused(attempt, second);
      if (second.trade.state !== 'closed') throw error;
      return 'closed';
    }
    await applyTrade(this.db, this.clock, {
      channelId: channel.channelId,
      trade: closedAtChannel(attempt.no),
    });
    // The channel did not know the payment (an Alipay page the payer has not opened yet): the payer
    // can still open and pay it until its time_expire, so it is asked about once more after that.
    if (first.trade.state === 'not_found') {
      await repo.scheduleLastQuery(this.db, attempt.id, this.lastQueryDelaySeconds);
    }
    return 'closed';
  }

  /**
   * Asks the channels about the order's newest waiting attempts and applies their answers: for "I
   * have paid" and the merchant's `POST /orders/:id/sync`. A channel that cannot answer is reported,
   * not thrown.
   */
  async syncOrder(orderId: string): Promise<SyncResult> {
    const attempts = await repo.listWaitingAttempts(this.db, orderId, SYNC_MAX_ATTEMPTS);
    const result: SyncResult = { queried: attempts.length, applied: 0, failures: [] };
    await Promise.all(
      attempts.map(async (attempt) => {
        try {
          const { applied } = await this.queryAttempt(attempt);
          if (applied.result === 'applied') result.applied++;
          if (applied.result === 'rejected') {
            result.failures.push({ attemptNo: attempt.no, providerCode: applied.reason, message: 'refused' });
          }
        } catch (error) {
          if (!(error instanceof ChannelError)) throw error;
          result.failures.push({
            attemptNo: attempt.no,
            providerCode: error.providerCode,
            message: error.message,
          });
        }
      }),
    );
    return result;
  }

  /**
   * Closes a waiting order the safe way: every open attempt is closed at its channel first (or found
   * paid, which wins), then `waiting → closed` with `order.closed`, in one transaction that checks no
   * attempt opened meanwhile. Used by the merchant's close and by the expiry job. A channel that
   * cannot answer throws `channel_error` and leaves the order waiting, to be tried again.
   */
  async closeOrder(orderId: string): Promise<CloseOrderResult> {
    for (let round = 0; round < CLOSE_ROUNDS; round++) {
      const open = await repo.listWaitingAttempts(this.db, orderId, 100);
      for (const attempt of open) {
        try {
          await this.closeAttempt(attempt);
        } catch (error) {
          if (!(error instanceof ChannelError)) throw error;
          throw new AppError(
            'channel_error',
            `could not close attempt ${attempt.no} at ${error.provider} (${error.providerCode}): ${error.message}`,
            { cause: error, details: { attemptId: attempt.id, providerCode: error.providerCode } },
          );
        }
      }
      const now = this.clock.now();
      const outcome = await this.db.transaction().execute(async (trx) => {
        const order = await orderRepo.findOrderByIdForUpdate(trx, orderId);
        if (!order) throw new Error(`order ${orderId} vanished`);
        if (order.status !== 'waiting') return { order, closed: false };
        if ((await orderRepo.countOpenAttempts(trx, order.id)) > 0) return undefined;
        const closed = await orderRepo.closeWaitingOrder(trx, order.id, now);
        if (!closed) throw new Error(`order ${order.id} changed while locked`);
        await recordEvent(trx, {
          appId: closed.app_id,
          type: 'order.closed',
          orderId: closed.id,
          data: { ...toOrderView(closed) },
          notifyUrl: closed.notify_url,
          channel: { channelId: null, channelCode: closed.channel_code },
          now,
        });
        return { order: closed, closed: true };
      });
      if (outcome) {
        // After the commit: the paying browser hears of the close, the dispatcher of its webhook.
        if (outcome.closed) announceOrderChange(this.db, orderId);
        return outcome;
      }
    }
    throw new AppError(
      'order_has_open_attempts',
      'payments kept being started for this order while it was being closed; try again',
    );
  }

  async #client(attempt: AttemptRow): Promise<AttemptChannel> {
    const channel = await this.channels.find(attempt.channel_id);
    if (!channel) throw new Error(`channel ${attempt.channel_id} of attempt ${attempt.id} vanished`);
    return { client: this.clients.for(channel), channelId: channel.id };
  }
}

/**
 * The channel says the attempt is paid. Applied: it is. Refused (the amount differs from what we
 * sent): the attempt can be neither paid nor closed here, and a person must look; say so loudly.
 */
function paidOrRefused(attempt: AttemptRow, query: { applied: ApplyResult }): AttemptCloseOutcome {
  if (query.applied.result !== 'rejected') return 'paid';
  throw new Error(
    `the channel reports attempt ${attempt.no} paid, but the report was refused (${query.applied.reason}); ` +
      'the attempt stays open for a person to look at',
  );
}

interface AttemptChannel {
  client: ChannelClient;
  channelId: string;
}

/** What we know once the channel has closed a payment at our request. */
function closedAtChannel(outTradeNo: string): TradeSnapshot {
  return {
    outTradeNo,
    state: 'closed',
    amount: null,
    channelTradeNo: null,
    payerId: null,
    paidAt: null,
    providerState: 'CLOSED_ON_REQUEST',
    raw: {},
  };
}
