import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

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
 * The merchant's webhook endpoint for the simulation: a real HTTP server on 127.0.0.1 that checks
 * every request's Standard Webhooks signature with the `standardwebhooks` package and records the
 * event. `failFirstTry(id)` says which event ids get a 500 on their first try, so the dispatcher's
 * retries are part of the day too. A request that does not verify is recorded in `rejected` and
 * answered 400 (the test then fails on it).
 */
export class MerchantReceiver {
  readonly received: ReceivedWebhook[] = [];
  readonly rejected: string[] = [];
  readonly #tries = new Map<string, number>();
  readonly #server: http.Server;
  readonly #webhook: () => Webhook | undefined;
  readonly #failFirstTry: (id: string) => boolean;

  private constructor(
    server: http.Server,
    secret: () => string | undefined,
    failFirstTry: (id: string) => boolean,
  ) {
    this.#server = server;
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
    const server = http.createServer();
    const receiver = new MerchantReceiver(server, options.secret, options.failFirstTry);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = receiver.#handle(request.url ?? '', request.headers, body);
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(status === 200 ? '{"code":"SUCCESS"}' : '{"code":"FAIL"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
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
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(path: string, headers: http.IncomingHttpHeaders, body: string): number {
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
