import type { Kysely } from 'kysely';
import type { MerchantPrincipal } from '../apps/app.service.js';
import type { ChannelService } from '../channels/channel.service.js';
import {
  type ChannelClient,
  ChannelError,
  isTransientChannelError,
  type RefundSnapshot,
} from '../channels/channel-client.js';
import type { ChannelClients } from '../channels/channel-clients.js';
import { newChannelNo } from '../channels/channel-no.js';
import type { Clock } from '../clock.js';
import type { DB, OrderRow, RefundRow } from '../db/schema.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { addSeconds } from '../jobs/schedules.js';
import * as orderRepo from '../orders/order.repository.js';
import { isRowId } from '../validation.js';
import { applyRefund, type RefundApplyResult } from './apply-refund.js';
import * as repo from './refund.repository.js';
import { type RefundView, toRefundView } from './refund.view.js';

export interface CreateRefundInput {
  /** The order, by paycenter's id … */
  orderId?: string | undefined;
  /** … or by the merchant's (exactly one of the two). */
  merchantOrderId?: string | undefined;
  merchantRefundId: string;
  amount: number;
  reason?: string | undefined;
}

export const REFUND_LIMITS = {
  merchantRefundId: /^[A-Za-z0-9_-]{1,64}$/,
  /** WeChat Pay takes 80 characters of reason, Alipay 256: the smaller, so both show all of it. */
  reasonMax: 80,
} as const;

function checkCreateInput(input: CreateRefundInput): void {
  if ((input.orderId === undefined) === (input.merchantOrderId === undefined)) {
    throw invalidRequest('orderId', 'give exactly one of orderId and merchantOrderId');
  }
  if (!REFUND_LIMITS.merchantRefundId.test(input.merchantRefundId)) {
    throw invalidRequest('merchantRefundId', 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -');
  }
  if (!Number.isSafeInteger(input.amount) || input.amount < 1) {
    throw invalidRequest('amount', 'must be a whole number of fen, at least 1');
  }
  if (input.reason !== undefined && input.reason.length > REFUND_LIMITS.reasonMax) {
    throw invalidRequest('reason', `must be at most ${REFUND_LIMITS.reasonMax} characters`);
  }
}

/**
 * Refunds. The rules are checked with the order row locked, so they hold however many requests
 * race: the order is paid, and the amount fits in what is left after what was refunded and what is
 * still on its way back. The refund row commits first; the channel is called after the commit, and
 * its answer (or its callback, or a later query) goes through `applyRefund`.
 */
export class RefundService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly channels: ChannelService,
    private readonly clients: ChannelClients,
    private readonly clock: Clock,
    private readonly urls: { publicUrl: () => string },
    /** Seconds after a refund is accepted before the refund job first asks about it. */
    private readonly firstQueryDelaySeconds: number,
  ) {}

  /** Creates and sends the refund, or returns the existing one for a repeated request (`created: false`). */
  async create(
    principal: MerchantPrincipal,
    input: CreateRefundInput,
  ): Promise<{ refund: RefundView; created: boolean }> {
    checkCreateInput(input);
    const order = await this.#findOrder(principal.appId, input);
    const now = this.clock.now();
    const inserted = await this.db.transaction().execute(async (trx) => {
      const locked = await orderRepo.findOrderForUpdate(trx, principal.appId, order.id);
      if (!locked) throw notFound('order');
      const existing = await repo.findMerchantRefund(trx, principal.appId, input.merchantRefundId);
      if (existing) return { existing };
      if (locked.status === 'waiting' || locked.status === 'closed' || locked.paid_attempt_id === null) {
        throw new AppError(
          'order_not_paid',
          `this order is ${locked.status}; only a paid order can be refunded`,
        );
      }
      const inFlight = await repo.sumMerchantRefundsInFlight(trx, locked.id);
      const refundable = Number(locked.amount) - Number(locked.refunded_amount) - inFlight;
      if (input.amount > refundable) {
        throw new AppError(
          'refund_exceeds_balance',
          `the order can be refunded at most ${refundable} fen more (amount ${locked.amount}, refunded ${locked.refunded_amount}, in progress ${inFlight})`,
          { details: { refundable, refunded: Number(locked.refunded_amount), inProgress: inFlight } },
        );
      }
      const row = await repo.insertRefund(trx, {
        appId: principal.appId,
        orderId: locked.id,
        attemptId: locked.paid_attempt_id,
        kind: 'merchant',
        merchantRefundId: input.merchantRefundId,
        no: newChannelNo('R', now),
        amount: input.amount,
        reason: input.reason ?? null,
        nextQueryAt: addSeconds(now, this.firstQueryDelaySeconds),
        now,
      });
      return row ? { row } : {};
    });

    if (inserted.row) {
      try {
        await this.#send(inserted.row, await this.#target(inserted.row));
      } catch (error) {
        // Not sent, or not known to be: the answer says `waiting`, and the refund job sends it again.
        if (!(error instanceof ChannelError)) throw error;
      }
      return { refund: await this.#view(inserted.row.id), created: true };
    }
    // Someone else holds this merchant refund id: the same request repeated, or a conflict.
    const existing =
      inserted.existing ?? (await repo.findMerchantRefund(this.db, principal.appId, input.merchantRefundId));
    if (!existing)
      throw new Error(`refund ${input.merchantRefundId} conflicted on insert but cannot be read`);
    const differing: string[] = [];
    if (existing.order_id !== order.id) differing.push('order');
    if (Number(existing.amount) !== input.amount) differing.push('amount');
    if (differing.length > 0) {
      throw new AppError(
        'refund_conflict',
        `a refund with merchantRefundId "${input.merchantRefundId}" already exists with a different ${differing.join(', ')}`,
        { details: { refundId: existing.id, fields: differing } },
      );
    }
    return { refund: toRefundView(existing), created: false };
  }

  async get(principal: MerchantPrincipal, id: string): Promise<RefundView> {
    const row = isRowId(id) ? await repo.findRefund(this.db, principal.appId, id) : undefined;
    if (!row) throw notFound('refund');
    return toRefundView(row);
  }

  async list(
    principal: MerchantPrincipal,
    filter: repo.RefundFilter,
    limit: number,
  ): Promise<{ data: RefundView[]; hasMore: boolean }> {
    if (filter.orderId !== undefined && !isRowId(filter.orderId))
      throw invalidRequest('orderId', 'must be an order id');
    if (filter.before !== undefined && !isRowId(filter.before))
      throw invalidRequest('before', 'must be a refund id');
    const rows = await repo.listRefunds(this.db, principal.appId, filter, limit + 1);
    return { data: rows.slice(0, limit).map(toRefundView), hasMore: rows.length > limit };
  }

  /**
   * Sends a committed refund to its channel and applies the answer. Sending again is safe: both
   * providers treat a repeated out_refund_no as the same refund. A refusal fails the refund (with
   * `refund.failed`). A channel that cannot be reached (or is busy) throws the ChannelError: the
   * refund stays waiting, and the refund job sends it again.
   */
  async #send(refund: RefundRow, target: RefundTarget): Promise<RefundApplyResult> {
    let answer: RefundSnapshot;
    try {
      answer = await target.client.refund({
        outTradeNo: target.outTradeNo,
        outRefundNo: refund.no,
        amount: Number(refund.amount),
        total: target.total,
        reason: refund.reason,
        notifyUrl: `${this.urls.publicUrl()}/notify/refund/${target.channelId}`,
      });
    } catch (error) {
      if (error instanceof ChannelError && !isTransientChannelError(error)) {
        return this.#apply(refusal(refund.no, error));
      }
      throw error;
    }
    await repo.markRefundSubmitted(this.db, refund.id, this.clock.now());
    return this.#apply(answer);
  }

  /**
   * For the refund job: sends a refund the channel has not accepted yet, else asks how it went.
   * Throws the ChannelError of a channel that cannot answer; the job logs it and tries again later.
   */
  async syncRefund(refund: RefundRow): Promise<RefundApplyResult> {
    const target = await this.#target(refund);
    if (refund.submitted_at === null) return this.#send(refund, target);
    const report = await target.client.queryRefund(refund.no, target.outTradeNo);
    // Accepted once, unknown now: the provider lost it; sending it again is the idempotent remedy.
    if (report.state === 'not_found') return this.#send(refund, target);
    return this.#apply(report);
  }

  /** The paid attempt a refund goes back through, and its channel's client. */
  async #target(refund: RefundRow): Promise<RefundTarget> {
    const attempt = await this.db
      .selectFrom('attempts')
      .select(['no', 'amount', 'channel_id'])
      .where('id', '=', refund.attempt_id)
      .executeTakeFirstOrThrow();
    const channel = await this.channels.find(attempt.channel_id);
    if (!channel) throw new Error(`channel ${attempt.channel_id} of refund ${refund.id} vanished`);
    return {
      client: this.clients.for(channel),
      channelId: channel.id,
      outTradeNo: attempt.no,
      total: Number(attempt.amount),
    };
  }

  #apply(report: RefundSnapshot): Promise<RefundApplyResult> {
    return applyRefund(this.db, this.clock, { channelId: null, outTradeNo: null, refund: report });
  }

  async #findOrder(appId: string, input: CreateRefundInput): Promise<OrderRow> {
    let order: OrderRow | undefined;
    if (input.orderId !== undefined) {
      order = isRowId(input.orderId) ? await orderRepo.findOrder(this.db, appId, input.orderId) : undefined;
    } else if (input.merchantOrderId !== undefined) {
      order = await orderRepo.findOrderByMerchantId(this.db, appId, input.merchantOrderId);
    }
    if (!order) throw notFound('order');
    return order;
  }

  async #view(id: string): Promise<RefundView> {
    const row = await repo.findRefundById(this.db, id);
    if (!row) throw new Error(`refund ${id} vanished`);
    return toRefundView(row);
  }
}

interface RefundTarget {
  client: ChannelClient;
  channelId: string;
  /** The paid attempt's number (out_trade_no) and amount, which WeChat wants repeated. */
  outTradeNo: string;
  total: number;
}

/** The channel said no to the refund itself: that is its outcome. */
function refusal(outRefundNo: string, error: ChannelError): RefundSnapshot {
  return {
    outRefundNo,
    state: 'failed',
    amount: null,
    channelRefundNo: null,
    finishedAt: null,
    failureReason: `${error.providerCode}: ${error.message}`,
    providerState: error.providerCode,
    raw: {},
  };
}
