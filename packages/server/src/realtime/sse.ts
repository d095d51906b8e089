import type { FastifyReply, FastifyRequest } from 'fastify';

/** One Server-Sent Events response, written on the raw socket (Fastify no longer owns the reply). */
export interface SseStream {
  readonly closed: boolean;
  send(message: { id?: string; event?: string; data: string }): void;
  /** A comment line: invisible to EventSource, keeps proxies and the socket alive. */
  comment(text: string): void;
  /** Ends the response (the stream is over); idempotent. */
  end(): void;
  /** Runs once when the stream ends, whoever ended it (the client leaving included). */
  onClose(listener: () => void): void;
}

/**
 * Turns the reply into an event stream: status 200, `text/event-stream`, no caching, no proxy
 * buffering, and a `retry:` hint so a browser that loses the stream reconnects after `retryMs`.
 */
export function openEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { retryMs: number },
): SseStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
  });
  raw.flushHeaders();
  const listeners: (() => void)[] = [];
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    for (const listener of listeners.splice(0)) {
      try {
        listener();
      } catch (error) {
        request.log.error({ err: error }, 'an event stream close listener failed');
      }
    }
  };
  raw.on('close', finish);
  raw.on('error', finish);
  const write = (text: string) => {
    if (closed || raw.writableEnded) return;
    raw.write(text);
  };
  write(`retry: ${options.retryMs}\n\n`);
  return {
    get closed() {
      return closed;
    },
    send({ id, event, data }) {
      let text = '';
      if (id !== undefined) text += `id: ${id}\n`;
      if (event !== undefined) text += `event: ${event}\n`;
      for (const line of data.split('\n')) text += `data: ${line}\n`;
      write(`${text}\n`);
    },
    comment(text) {
      write(`: ${text.replace(/\n/g, ' ')}\n\n`);
    },
    end() {
      if (!raw.writableEnded) raw.end();
      finish();
    },
    onClose(listener) {
      if (closed) listener();
      else listeners.push(listener);
    },
  };
}
