import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import { applyTrade } from '../attempts/apply-trade.js';
import type { ChannelService } from '../channels/channel.service.js';
import { type CallbackAnswer, CallbackRejected, type CallbackRequest } from '../channels/channel-client.js';
import type { ChannelClients } from '../channels/channel-clients.js';
import type { Clock } from '../clock.js';
import type { DB } from '../db/schema.js';
import { applyRefund } from '../refunds/apply-refund.js';

export type CallbackKind = 'order' | 'refund';

export type CallbackOutcome =
  | { handled: false }
  | { handled: true; answer: CallbackAnswer; accepted: boolean; taskIds: string[] };

/**
 * Channel callbacks: verify first (signature, time, decryption, merchant), then check the report
 * against what we sent (attempt, channel, amount), then apply it through the same function as every
 * other outcome source. Anything failing gets the provider's failure answer and changes nothing;
 * the provider will retry, and the reason is logged without the payload.
 */
export class CallbackService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly channels: ChannelService,
    private readonly clients: ChannelClients,
    private readonly clock: Clock,
  ) {}

  async handle(
    kind: CallbackKind,
    channelId: string,
    request: CallbackRequest,
    log: FastifyBaseLogger,
  ): Promise<CallbackOutcome> {
    const channel = await this.channels.find(channelId);
    if (!channel) return { handled: false };
    const client = this.clients.for(channel);
    const refuse = (reason: string, detail: Record<string, unknown> = {}): CallbackOutcome => {
      log.warn(
        { channelId, channelCode: channel.code, callback: kind, reason, ...detail },
        'channel callback refused',
      );
      return { handled: true, answer: client.callbackAnswer(false), accepted: false, taskIds: [] };
    };

    let verified: ReturnType<typeof client.verifyCallback>;
    try {
      verified = client.verifyCallback(request);
    } catch (error) {
      if (error instanceof CallbackRejected) return refuse(error.reason, { message: error.message });
      throw error;
    }

    // WeChat posts refund results to the refund URL; Alipay reports refunds on the payment's own notify
    // URL (the order URL). Either way the report is checked against the refund it names.
    if (verified.kind === 'payment' && kind !== 'order') {
      return refuse('payment_on_refund_url', { outTradeNo: verified.trade.outTradeNo });
    }
    const [result, subject] =
      verified.kind === 'refund'
        ? [
            await applyRefund(this.db, this.clock, {
              channelId: channel.id,
              outTradeNo: verified.outTradeNo,
              refund: verified.refund,
            }),
            { outRefundNo: verified.refund.outRefundNo },
          ]
        : [
            await applyTrade(this.db, this.clock, { channelId: channel.id, trade: verified.trade }),
            { outTradeNo: verified.trade.outTradeNo },
          ];
    if (result.result === 'rejected') return refuse(result.reason, subject);
    if (result.result === 'applied') {
      log.info({ channelId, ...subject, change: result.change }, `${verified.kind} callback applied`);
    }
    return {
      handled: true,
      answer: client.callbackAnswer(true),
      accepted: true,
      taskIds: result.result === 'applied' ? result.taskIds : [],
    };
  }
}
