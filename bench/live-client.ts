/**
 * A share of the browsers of `npm run bench -- live`, on a worker thread of its own (several share
 * the streams, so the client's event loop is never what delays an event). Each browser is an
 * EventSource-like reader of `GET /api/v1/public/orders/:id/events?token=…` that records when its order
 * was reported paid, in ms of the system-wide monotonic clock (`process.hrtime`), comparable with the
 * paying process's commit times.
 *
 * workerData: `{ base, orders: [{ id, token }], warm }`. Messages out: `{ type: 'warm' }` once the
 * first `warm` streams answered 200; after `{ type: 'continue' }` in, `{ type: 'open' }` once every
 * stream did (the benchmark reads the server's memory at both points); after `{ type: 'measure' }` in, `{ type: 'done', arrivals: [[orderId, at], …], elu,
 * delayP99Ms }` once every order was reported paid (elu: this thread's event-loop utilisation from
 * `measure` to the last arrival; delayP99Ms: its p99 event-loop delay meanwhile). Only `node:`
 * modules: the benchmark loads it from a data: URL.
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

interface ClientData {
  base: string;
  orders: Array<{ id: string; token: string }>;
  warm: number;
}

const { base, orders, warm } = workerData as ClientData;
const port = parentPort!;
const monotonicMs = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const arrivals = new Map<string, number>();
let measuring: { elu: ReturnType<typeof performance.eventLoopUtilization> } | undefined;
const delay = monitorEventLoopDelay({ resolution: 1 });

function finishIfDone(): void {
  if (!measuring || arrivals.size < orders.length) return;
  const elu = performance.eventLoopUtilization(measuring.elu).utilization;
  delay.disable();
  port.postMessage({
    type: 'done',
    arrivals: [...arrivals],
    elu,
    delayP99Ms: delay.percentile(99) / 1e6,
  });
  measuring = undefined;
  agent.destroy();
}

function follow(order: { id: string; token: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${base}/api/v1/public/orders/${order.id}/events?token=${order.token}`,
      { agent, headers: { accept: 'text/event-stream' } },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`the stream for order ${order.id} answered ${response.statusCode}`));
          return;
        }
        let buffered = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          buffered += chunk;
          if (buffered.includes('"status":"paid"')) {
            if (!arrivals.has(order.id)) arrivals.set(order.id, monotonicMs());
            buffered = '';
            finishIfDone();
          } else if (buffered.length > 4096) {
            buffered = buffered.slice(-512);
          }
        });
        resolve();
      },
    );
    request.on('error', reject);
  });
}

let proceed: () => void = () => {};
const continued = new Promise<void>((resolve) => {
  proceed = resolve;
});
port.on('message', (message: { type: string }) => {
  if (message.type === 'continue') proceed();
  if (message.type !== 'measure') return;
  delay.enable();
  measuring = { elu: performance.eventLoopUtilization() };
  finishIfDone();
});

/** Opened in groups so the server is not asked for all its connections in the same instant. */
async function open(share: Array<{ id: string; token: string }>): Promise<void> {
  for (let i = 0; i < share.length; i += 100) await Promise.all(share.slice(i, i + 100).map(follow));
}
await open(orders.slice(0, warm));
port.postMessage({ type: 'warm' });
await continued;
await open(orders.slice(warm));
port.postMessage({ type: 'open' });
