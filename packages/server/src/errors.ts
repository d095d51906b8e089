/**
 * The error catalog. Every failure a client can see has a stable `code`; the HTTP layer maps the
 * code to one status and one body shape: `{"error":{"code","message"}}`.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  channel_unavailable: 400,
  unauthorized: 401,
  app_disabled: 403,
  not_found: 404,
  order_conflict: 409,
  order_paid: 409,
  order_closed: 409,
  order_has_open_attempts: 409,
  order_not_paid: 409,
  refund_conflict: 409,
  refund_exceeds_balance: 409,
  channel_exists: 409,
  channel_in_use: 409,
  notify_task_delivered: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  channel_error: 502,
  not_ready: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options?.details;
  }
}

export const notFound = (what: string): AppError => new AppError('not_found', `${what} not found`);

export const invalidRequest = (field: string, message: string): AppError =>
  new AppError('invalid_request', `${field}: ${message}`, { details: { field } });

/** SQLSTATE 23505: a unique constraint refused the row. The only condition we read as "already exists". */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; constraint?: unknown };
  if (e.code !== '23505') return false;
  return constraint === undefined || e.constraint === constraint;
}
