import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, type ErrorCode } from '../errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; requestId: string; [key: string]: unknown };
}

interface ValidationIssue {
  instancePath?: string;
  schemaPath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** Turns the first schema violation into `body.amount: must be integer`, naming the field. */
function describeValidation(
  context: string | undefined,
  issues: ValidationIssue[],
): { field: string; message: string } {
  const issue = issues[0] ?? {};
  const path = (issue.instancePath ?? '').split('/').filter(Boolean).join('.');
  const params = issue.params ?? {};
  const extra = params.additionalProperties ?? params.additionalProperty;
  const missing = params.missingProperty ?? params.requiredProperties;
  let field = path;
  let message = issue.message ?? 'is invalid';
  if (issue.keyword === 'boolean' && issue.schemaPath?.endsWith('additionalProperties')) {
    message = 'is not a known field';
  } else if (issue.keyword === 'additionalProperties' && extra !== undefined) {
    const name = Array.isArray(extra) ? extra[0] : extra;
    field = [path, String(name)].filter(Boolean).join('.');
    message = 'is not a known field';
  } else if (issue.keyword === 'const') {
    // A union of literals (a status, a channel code) fails once per literal, then as anyOf: name them all.
    const allowed = issues
      .filter((other) => other.keyword === 'const' && other.instancePath === issue.instancePath)
      .map((other) => JSON.stringify(other.params?.allowedValue));
    message = allowed.length > 1 ? `must be one of ${allowed.join(', ')}` : `must be ${allowed[0]}`;
  } else if (issue.keyword === 'required' && missing !== undefined) {
    const name = Array.isArray(missing) ? missing[0] : missing;
    field = [path, String(name)].filter(Boolean).join('.');
    message = 'is required';
  }
  const where = context && context !== 'body' ? `${context}.` : '';
  return {
    field: field || context || 'request',
    message: `${where}${field || context || 'request'}: ${message}`,
  };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_RATE_LIMIT_EXCEEDED: 'rate_limited',
};

/** One error shape for every failure, validation and 404s included; 5xx details stay in the log. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | AppError | Error, request, reply) => {
    let status: number;
    let body: ErrorBody['error'];
    if (error instanceof AppError) {
      status = error.status;
      body = { code: error.code, message: error.message, requestId: request.id, ...(error.details ?? {}) };
      // An error that says when to come back (a throttle) says it the HTTP way too.
      const retryAfterMs = error.details?.retryAfterMs;
      if (typeof retryAfterMs === 'number')
        reply.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    } else if ('validation' in error && Array.isArray(error.validation)) {
      const { field, message } = describeValidation(
        error.validationContext,
        error.validation as ValidationIssue[],
      );
      status = 400;
      body = { code: 'invalid_request', message, field, requestId: request.id };
    } else if ('code' in error && typeof error.code === 'string' && FASTIFY_CODES[error.code]) {
      const code = FASTIFY_CODES[error.code] as ErrorCode;
      status = code === 'rate_limited' ? 429 : ((error as FastifyError).statusCode ?? 400);
      const message =
        error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError
          ? 'the body is not valid JSON'
          : error.message;
      body = { code, message, requestId: request.id };
    } else if (error instanceof SyntaxError && (error as FastifyError).statusCode === 400) {
      status = 400;
      body = { code: 'invalid_request', message: 'the body is not valid JSON', requestId: request.id };
    } else if (
      typeof (error as FastifyError).statusCode === 'number' &&
      (error as FastifyError).statusCode! >= 400 &&
      (error as FastifyError).statusCode! < 500
    ) {
      status = (error as FastifyError).statusCode!;
      body = {
        code: status === 404 ? 'not_found' : 'invalid_request',
        message: error.message,
        requestId: request.id,
      };
    } else {
      request.log.error({ err: error }, 'request failed');
      status = 500;
      body = { code: 'internal_error', message: 'internal error; see the server log', requestId: request.id };
    }
    if (status >= 400 && status < 500) request.log.info({ code: body.code }, body.message);
    return reply.status(status).send({ error: body });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error: {
        code: 'not_found',
        message: `no route for ${request.method} ${request.url.split('?')[0]}`,
        requestId: request.id,
      },
    });
  });
}
