import type { IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { Receiver } from '../helpers/webhook-receiver.js';

/** One webhook as the merchant received it, its signature checked. */
export interface ReceivedWebhook {
  id: string;
  type: string;
  /** The path it was posted to. */
  path: string;
  data: Record<string, unknown>;
  /** Which try of this event id this was, as the receiver counted them (1 = first). */
  try: number;
  /** What the receiver answered. */
  answered: number;
}

/**
 * The merchant's webhook endpoint for the simulation: the tests' webhook `Receiver` (a real HTTP
 * server on 127.0.0.1) answering as a merchant would. It checks every request's Standard Webhooks
 * signature with the `standardwebhooks` package and records the event. `failFirstTry(id)` says which
 * event ids get a 500 on their first try, so the dispatcher's retries are part of the day too. A
 * request that does not verify is recorded in `rejected` and answered 400 (the test then fails on it).
 */
export class MerchantReceiver {
  readonly received: ReceivedWebhook[] = [];
  readonly rejected: string[] = [];
  readonly #tries = new Map<string, number>();
  readonly #http: Receiver;
  readonly #webhook: () => Webhook | undefined;
  readonly #failFirstTry: (id: string) => boolean;

  private constructor(
    receiver: Receiver,
    secret: () => string | undefined,
    failFirstTry: (id: string) => boolean,
  ) {
    this.#http = receiver;
    let cached: { secret: string; webhook: Webhook } | undefined;
    this.#webhook = () => {
      const value = secret();
      if (value === undefined) return undefined;
      if (cached?.secret !== value) cached = { secret: value, webhook: new Webhook(value) };
      return cached.webhook;
    };
    this.#failFirstTry = failFirstTry;
  }

  static async start(options: {
    /** The app's whsec_ secret, known once the app exists. */
    secret: () => string | undefined;
    failFirstTry: (id: string) => boolean;
  }): Promise<MerchantReceiver> {
    const http = await Receiver.start();
    const merchant = new MerchantReceiver(http, options.secret, options.failFirstTry);
    http.respond = (request) => {
      const status = merchant.#handle(request.path, request.headers, request.body);
      return {
        status,
        body: status === 200 ? '{"code":"SUCCESS"}' : '{"code":"FAIL"}',
        headers: { 'content-type': 'application/json' },
      };
    };
    return merchant;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#http.port}`;
  }

  /** The app's notify URL. */
  get url(): string {
    return `${this.origin}/paycenter/webhooks`;
  }

  /** Event ids received at least once with a 2xx answer. */
  deliveredIds(): Set<string> {
    return new Set(this.received.filter((r) => r.answered === 200).map((r) => r.id));
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  #handle(path: string, headers: IncomingHttpHeaders, body: string): number {
    const id = String(headers['webhook-id'] ?? '');
    const timestamp = String(headers['webhook-timestamp'] ?? '');
    const signatures = String(headers['webhook-signature'] ?? '').split(' ');
    const webhook = this.#webhook();
    // The simulation runs on a manual clock far from the wall clock, so Webhook.verify's freshness
    // check cannot apply: the signature itself is checked with the library's own signing.
    const expected =
      webhook && /^\d+$/.test(timestamp)
        ? webhook.sign(id, new Date(Number(timestamp) * 1000), body)
        : undefined;
    if (expected === undefined || !signatures.includes(expected)) {
      this.rejected.push(`${id}: bad signature`);
      return 400;
    }
    let event: { id?: unknown; type?: unknown; data?: unknown };
    try {
      event = JSON.parse(body);
    } catch {
      this.rejected.push(`${id}: body is not JSON`);
      return 400;
    }
    if (
      event.id !== id ||
      typeof event.type !== 'string' ||
      typeof event.data !== 'object' ||
      event.data === null
    ) {
      this.rejected.push(`${id}: malformed event ${body.slice(0, 200)}`);
      return 400;
    }
    const tryNo = (this.#tries.get(id) ?? 0) + 1;
    this.#tries.set(id, tryNo);
    const answered = tryNo === 1 && this.#failFirstTry(id) ? 500 : 200;
    this.received.push({
      id,
      type: event.type,
      path,
      data: event.data as Record<string, unknown>,
      try: tryNo,
      answered,
    });
    return answered;
  }
}
