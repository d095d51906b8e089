import type { FastifyBaseLogger } from 'fastify';
import type { Kysely } from 'kysely';
import * as attemptRepo from '../attempts/attempt.repository.js';
import type { PaymentSync } from '../attempts/payment-sync.js';
import { ChannelError } from '../channels/channel-client.js';
import type { Clock } from '../clock.js';
import type { DB } from '../db/schema.js';
import { AppError } from '../errors.js';
import * as orderRepo from '../orders/order.repository.js';
import * as refundRepo from '../refunds/refund.repository.js';
import type { RefundService } from '../refunds/refund.service.js';
import type { Job } from './job-runner.js';
import type { LifecycleSchedules } from './schedules.js';

/** Rows one pass of a job claims; the next pass takes the rest. */
const BATCH = 50;

type JobLogger = Pick<FastifyBaseLogger, 'error' | 'warn' | 'info' | 'debug'>;

interface JobDependencies {
  db: Kysely<DB>;
  clock: Clock;
  payments: PaymentSync;
  refunds: RefundService;
  schedules: LifecycleSchedules;
  logger: JobLogger;
}

/**
 * Handles each claimed row; a channel that cannot answer (or refuses) is logged and the row comes due
 * again by its schedule. Anything else is a bug: logged as an error, the other rows go on.
 */
async function handleEach<T extends { id: string }>(
  job: string,
  rows: readonly T[],
  logger: JobLogger,
  handle: (row: T) => Promise<unknown>,
): Promise<number> {
  await Promise.all(
    rows.map(async (row) => {
      try {
        await handle(row);
      } catch (error) {
        if (error instanceof ChannelError || (error instanceof AppError && error.code === 'channel_error')) {
          logger.warn({ job, rowId: row.id, err: error }, 'channel did not answer; trying again later');
        } else {
          logger.error({ job, rowId: row.id, err: error }, 'lifecycle job failed on a row');
        }
      }
    }),
  );
  return rows.length;
}

/**
 * Asks the channel about attempts still waiting some time after submit (a lost callback), backing off
 * by the schedule. An attempt of an order that is no longer waiting (paid through another attempt,
 * or closed) is closed at its channel instead, after the same question: if it was paid, that is a
 * duplicate payment and is applied as one.
 */
function paymentQueryJob(deps: JobDependencies): Job {
  return {
    name: 'payment-query',
    run: async () => {
      const claimed = await attemptRepo.claimDueAttempts(
        deps.db,
        deps.clock.now(),
        BATCH,
        deps.schedules.paymentQuery,
      );
      const orders = await orderRepo.findOrdersByIds(deps.db, [...new Set(claimed.map((a) => a.order_id))]);
      const waiting = new Set(orders.filter((o) => o.status === 'waiting').map((o) => o.id));
      return handleEach('payment-query', claimed, deps.logger, async (attempt) => {
        if (attempt.status === 'closed') await deps.payments.lastQuery(attempt);
        else if (waiting.has(attempt.order_id)) await deps.payments.queryAttempt(attempt);
        else await deps.payments.closeAttempt(attempt);
      });
    },
  };
}

/** Sends refunds the channel has not accepted yet (duplicate-payment refunds start here) and asks about the rest. */
function refundJob(deps: JobDependencies): Job {
  return {
    name: 'refund',
    run: async () => {
      const claimed = await refundRepo.claimDueRefunds(
        deps.db,
        deps.clock.now(),
        BATCH,
        deps.schedules.refundQuery,
      );
      return handleEach('refund', claimed, deps.logger, (refund) => deps.refunds.syncRefund(refund));
    },
  };
}

/** Closes waiting orders past their expiry: at the channels first (a payment found there wins), then here. */
function expiryJob(deps: JobDependencies): Job {
  return {
    name: 'expiry',
    run: async () => {
      const claimed = await orderRepo.claimExpiredOrders(
        deps.db,
        deps.clock.now(),
        BATCH,
        deps.schedules.expiryLeaseSeconds,
      );
      return handleEach('expiry', claimed, deps.logger, (order) => deps.payments.closeOrder(order.id));
    },
  };
}

export function lifecycleJobs(deps: JobDependencies): Job[] {
  return [expiryJob(deps), paymentQueryJob(deps), refundJob(deps)];
}
