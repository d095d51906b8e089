import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type Agent, request } from 'undici';
import { USER_AGENT } from '../version.js';
import { createWebhookAgent, ForbiddenAddressError } from './address-guard.js';
import { judgeResponse, type Outcome } from './outcome.js';

/** The most of an answer kept in notify_logs. */
export const RESPONSE_EXCERPT_BYTES = 2048;
/** The most of an answer read to judge it; a longer body is cut here (and judged as not JSON). */
export const RESPONSE_READ_BYTES = 64 * 1024;

/** The decoded key of a Standard Webhooks secret (`whsec_` + base64). */
export function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length < 16) throw new Error('the webhook secret is not a whsec_ secret');
  return key;
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, the Standard Webhooks signature. */
export function signWebhook(key: Buffer, webhookId: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${webhookId}.${timestampSeconds}.`).update(body).digest('base64')}`;
}

/** The webhook body: `{"id","type","createdAt","data"}`, the same bytes on every try. */
export function webhookBody(event: { id: string; type: string; createdAt: Date; data: unknown }): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    createdAt: event.createdAt.toISOString(),
    data: event.data,
  });
}

export interface WebhookMessage {
  url: string;
  /** The event id: `webhook-id`, stable across retries so receivers can drop duplicates. */
  webhookId: string;
  body: string;
  secretKey: Buffer;
  /** When the try is made: `webhook-timestamp`. */
  timestamp: Date;
}

/** What one try came to. `error` is set when there was no answer (timeout, refused, TLS, …). */
export interface TryResult {
  outcome: Outcome;
  httpStatus: number | null;
  /** At most RESPONSE_EXCERPT_BYTES of the answer's body. */
  excerpt: string | null;
  error: string | null;
  /** The address check refused the destination. */
  refused: boolean;
  durationMs: number;
}

export interface SenderOptions {
  /** The whole try, connect to last body byte. Default 10 s. */
  timeoutMs?: number;
  /** Allow loopback/private/link-local destinations (PAYCENTER_NOTIFY_ALLOW_PRIVATE). Default false. */
  allowPrivate?: boolean;
  /** Keep-alive connections per destination origin. Default 16. */
  connectionsPerOrigin?: number;
}

/** Cuts text to at most `maxBytes` of UTF-8 without splitting a character; NULs (which text columns refuse) become U+FFFD. */
export function excerptOf(bytes: Buffer, maxBytes = RESPONSE_EXCERPT_BYTES): string {
  let end = Math.min(bytes.length, maxBytes);
  if (end < bytes.length) {
    // Step back off continuation bytes (10xxxxxx) to the start of the cut character.
    while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  }
  return sanitizeText(bytes.subarray(0, end).toString('utf8'));
}

export function sanitizeText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}

function describeError(error: unknown): string {
  if (error instanceof ForbiddenAddressError) return error.message;
  const e = error as { code?: unknown; message?: unknown; cause?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const explained: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'DNS lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
    UND_ERR_SOCKET: 'connection closed',
    UND_ERR_HEADERS_TIMEOUT: 'timeout waiting for the answer',
    UND_ERR_BODY_TIMEOUT: 'timeout reading the answer',
  };
  if (code !== undefined && explained[code]) return `${explained[code]} (${code}: ${message})`;
  if (code !== undefined && /CERT|TLS|SSL/.test(code)) return `TLS error (${code}: ${message})`;
  return code !== undefined ? `${code}: ${message}` : message;
}

/**
 * Sends webhooks over undici keep-alive connections: no redirects followed, a deadline for the whole
 * try, the answer read up to a cap. Never throws: every failure is a TryResult.
 */
export class WebhookSender {
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(options: SenderOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#agent = createWebhookAgent({
      allowPrivate: options.allowPrivate ?? false,
      connections: options.connectionsPerOrigin ?? 16,
      connectTimeoutMs: Math.min(this.#timeoutMs, 10_000),
      timeoutMs: this.#timeoutMs,
    });
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  async send(message: WebhookMessage): Promise<TryResult> {
    const started = performance.now();
    const timestamp = Math.floor(message.timestamp.getTime() / 1000);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    const elapsed = () => Math.max(0, Math.round(performance.now() - started));
    try {
      const response = await request(message.url, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': message.webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(message.secretKey, message.webhookId, timestamp, message.body),
        },
        body: message.body,
      });
      const chunks: Buffer[] = [];
      let read = 0;
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        chunks.push(buffer);
        read += buffer.length;
        if (read >= RESPONSE_READ_BYTES) {
          response.body.destroy();
          break;
        }
      }
      const bytes = Buffer.concat(chunks).subarray(0, RESPONSE_READ_BYTES);
      return {
        outcome: judgeResponse(response.statusCode, bytes.toString('utf8')),
        httpStatus: response.statusCode,
        excerpt: bytes.length === 0 ? null : excerptOf(bytes),
        error: null,
        refused: false,
        durationMs: elapsed(),
      };
    } catch (error) {
      const described = timedOut
        ? `timeout: no complete answer within ${this.#timeoutMs} ms`
        : sanitizeText(describeError(error)).slice(0, RESPONSE_EXCERPT_BYTES);
      return {
        outcome: { delivered: false, reason: described },
        httpStatus: null,
        excerpt: null,
        error: described,
        refused: error instanceof ForbiddenAddressError,
        durationMs: elapsed(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
