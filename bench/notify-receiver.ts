/**
 * The merchant endpoint of `npm run bench -- notify`: a keep-alive node:http server on 127.0.0.1 that
 * answers every webhook `200 SUCCESS`. It runs in a process of its own, so answering 20,000 webhooks
 * never takes the event loop of the consumer being measured or of the benchmark that keeps the time.
 *
 * Every webhook's Standard Webhooks signature is checked (HMAC-SHA256 of `id.timestamp.body`): the
 * three consumers must do the same signing work, and a wrong signature is counted, not delivered.
 * Times are wall-clock milliseconds with a fraction (`performance.timeOrigin + performance.now()`),
 * comparable with the benchmark's and the writer's.
 *
 *   POST /hook            a webhook
 *   POST /reset?target=N  starts a phase: counts from zero; `complete` is when N distinct ids arrived
 *   GET  /stats           the phase's counts and times
 *   GET  /arrivals        the phase's first arrival time of each webhook-id
 *   GET  /ready           200
 *
 * Environment: PORT, BENCH_WEBHOOK_SECRET (the app's whsec_ secret). Run as plain JavaScript by the
 * benchmark (see support/typescript.ts).
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';

interface Phase {
  target: number;
  /** webhook-id → first arrival. */
  firstArrival: Map<string, number>;
  requests: number;
  badSignatures: number;
  bodyBytes: number;
  firstAt: number | null;
  lastAt: number | null;
  completeAt: number | null;
}

const secret = process.env.BENCH_WEBHOOK_SECRET ?? '';
if (!secret.startsWith('whsec_')) throw new Error('BENCH_WEBHOOK_SECRET must be a whsec_ secret');
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
const port = Number(process.env.PORT);

const now = () => performance.timeOrigin + performance.now();

/** What `GET /stats` answers: the phase's counts and times, `distinct` webhook-ids among them. */
export type ReceiverStats = Omit<Phase, 'firstArrival'> & { distinct: number };

function newPhase(target: number): Phase {
  return {
    target,
    firstArrival: new Map(),
    requests: 0,
    badSignatures: 0,
    bodyBytes: 0,
    firstAt: null,
    lastAt: null,
    completeAt: null,
  };
}

let phase = newPhase(0);

function header(request: http.IncomingMessage, name: string): string {
  const value = request.headers[name];
  return typeof value === 'string' ? value : '';
}

function signatureIsValid(request: http.IncomingMessage, body: string): boolean {
  const id = header(request, 'webhook-id');
  const timestamp = header(request, 'webhook-timestamp');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  const expected = `v1,${mac}`;
  return header(request, 'webhook-signature').split(' ').includes(expected);
}

function receive(request: http.IncomingMessage, response: http.ServerResponse): void {
  const arrivedAt = now();
  const current = phase;
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    current.requests++;
    current.bodyBytes += Buffer.byteLength(body);
    current.firstAt ??= arrivedAt;
    current.lastAt = arrivedAt;
    if (!signatureIsValid(request, body)) {
      current.badSignatures++;
      response.writeHead(400, { 'content-type': 'text/plain' }).end('bad signature');
      return;
    }
    const id = header(request, 'webhook-id');
    if (!current.firstArrival.has(id)) {
      current.firstArrival.set(id, arrivedAt);
      if (current.firstArrival.size === current.target) current.completeAt = arrivedAt;
    }
    response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '7' }).end('SUCCESS');
  });
}

function json(response: http.ServerResponse, value: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

const server = http.createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://receiver');
  if (request.method === 'POST' && url.pathname === '/hook') return receive(request, response);
  if (request.method === 'POST' && url.pathname === '/reset') {
    phase = newPhase(Number(url.searchParams.get('target') ?? 0));
    return json(response, { ok: true });
  }
  if (request.method === 'GET' && url.pathname === '/stats') {
    const { firstArrival, ...counts } = phase;
    const stats: ReceiverStats = { ...counts, distinct: firstArrival.size };
    return json(response, stats);
  }
  if (request.method === 'GET' && url.pathname === '/arrivals')
    return json(response, [...phase.firstArrival]);
  if (request.method === 'GET' && url.pathname === '/ready') return json(response, { ok: true });
  response.writeHead(404).end();
});
// Keep-alive for as long as any consumer keeps its pool: a closed socket would cost a reconnect.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
