import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** The path (and query) it was posted to. */
  path: string;
  /** The webhook-id header. */
  id: string;
  /** The client's port: one per connection. */
  remotePort: number;
}

export type Reply =
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Drop the connection without an answer. */
  | { destroy: true };

/** The Standard Webhooks headers of a received request, as `Webhook.verify` takes them. */
export function webhookHeaders(request: Received): Record<string, string> {
  return Object.fromEntries(
    ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(request.headers[h])]),
  );
}

/** A webhook receiver on 127.0.0.1 that records every request and answers as `respond` says. */
export class Receiver {
  readonly requests: Received[] = [];
  respond: (request: Received, index: number) => Reply | Promise<Reply> = () => ({
    status: 200,
    body: 'SUCCESS',
  });
  readonly #server: http.Server;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const received: Received = {
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          path: req.url ?? '',
          id: String(req.headers['webhook-id']),
          remotePort: req.socket.remotePort ?? 0,
        };
        const index = receiver.requests.push(received) - 1;
        const reply = await receiver.respond(received, index);
        if ('destroy' in reply) {
          req.socket.destroy();
          return;
        }
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  url(path = '/hooks'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Requests per webhook-id. */
  countsById(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    return counts;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
