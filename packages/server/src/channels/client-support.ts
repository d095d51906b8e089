import { CallbackRejected, ChannelError, type RefundSnapshot, type TradeSnapshot } from './channel-client.js';
import type { Provider } from './channel-codes.js';

/**
 * What both provider clients do alike once a message is authentic: read loosely typed JSON, turn a
 * shape the protocol does not allow into the right error, and name what the provider does not know.
 */

export type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A non-empty string, else null. */
export const str = (value: unknown): string | null =>
  typeof value === 'string' && value !== '' ? value : null;

/** An authentic answer or callback that does not have the shape the protocol promises. */
export class Malformed extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** An authentic answer we cannot read: `invalid_response` / `MALFORMED_RESPONSE`. */
export function malformedResponse(
  provider: Provider,
  message: string,
  options?: { cause?: unknown; httpStatus?: number },
): ChannelError {
  return new ChannelError(provider, 'invalid_response', 'MALFORMED_RESPONSE', message, options);
}

/** Reads an authentic answer: a `Malformed` shape becomes an invalid response. */
export function readAnswer<T>(provider: Provider, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof Malformed) throw malformedResponse(provider, error.message);
    throw error;
  }
}

/** Reads an authentic callback: a `Malformed` shape rejects it with the reason. */
export function readCallback<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof Malformed) throw new CallbackRejected(error.reason, error.message);
    throw error;
  }
}

/** The provider does not know the payment. */
export function notFoundTrade(outTradeNo: string, providerState: string, raw: Json): TradeSnapshot {
  return {
    outTradeNo,
    state: 'not_found',
    amount: null,
    channelTradeNo: null,
    payerId: null,
    paidAt: null,
    providerState,
    raw,
  };
}

/** The provider does not know the refund. */
export function notFoundRefund(outRefundNo: string, providerState: string, raw: Json): RefundSnapshot {
  return {
    outRefundNo,
    state: 'not_found',
    amount: null,
    channelRefundNo: null,
    finishedAt: null,
    failureReason: null,
    providerState,
    raw,
  };
}

/** A provider's error for a value in its wire format that cannot be read (its `reason` is safe to log). */
type FormatErrorClass = abstract new (...args: never[]) => Error & { readonly reason: string };

/** An optional time field: absent → null; unreadable → `Malformed` with the format error's reason. */
export function optionalTime(
  value: unknown,
  field: string,
  parse: (text: string) => Date,
  FormatError: FormatErrorClass,
): Date | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new Malformed('invalid_time', `${field} is not a string`);
  try {
    return parse(value);
  } catch (error) {
    if (error instanceof FormatError) throw new Malformed(error.reason, `${field}: ${error.message}`);
    throw error;
  }
}
