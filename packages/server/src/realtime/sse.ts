import type { FastifyReply, FastifyRequest } from 'fastify';

/** One Server-Sent Events message. */
interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/**
 * A message as it goes on the wire. Format it once and `write` the same text to every stream that
 * gets it: a thousand browsers watching one order cost one format, not a thousand.
 */
export function formatEvent({ id, event, data }: SseMessage): string {
  let text = '';
  if (id !== undefined) text += `id: ${id}\n`;
  if (event !== undefined) text += `event: ${event}\n`;
  for (const line of data.split('\n')) text += `data: ${line}\n`;
  return `${text}\n`;
}

/** One Server-Sent Events response, written on the raw socket (Fastify no longer owns the reply). */
export interface SseStream {
  readonly closed: boolean;
  /** Writes a message formatted by `formatEvent`. */
  write(frame: string): void;
  /** A comment line: invisible to EventSource, keeps proxies and the socket alive. */
  comment(text: string): void;
  /**
   * Ends the response (the stream is over); idempotent. A last frame (from `formatEvent`) goes out
   * with the end in one write: one system call per stream, not two, when a final status ends many.
   */
  end(lastFrame?: string): void;
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
  // The head goes out with this first write, in one packet.
  write(`retry: ${options.retryMs}\n\n`);
  return {
    get closed() {
      return closed;
    },
    write,
    comment(text) {
      write(`: ${text.replace(/\n/g, ' ')}\n\n`);
    },
    end(lastFrame) {
      if (!raw.writableEnded) {
        if (lastFrame === undefined || closed) raw.end();
        else raw.end(lastFrame);
      }
      finish();
    },
    onClose(listener) {
      if (closed) listener();
      else listeners.push(listener);
    },
  };
}
