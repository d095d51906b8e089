import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CallbackDispatcher, type CallbackSpec } from '../src/callbacks.js';

describe('sandbox callbacks: delayed ones can be released early', () => {
  let server: http.Server;
  let url: string;
  const received: string[] = [];

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      request.on('end', () => {
        received.push(body);
        response.writeHead(200).end('success');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const spec = (body: string): CallbackSpec => ({
    provider: 'alipay',
    kind: 'payment',
    outTradeNo: body,
    url,
    build: () => ({ headers: { 'content-type': 'text/plain' }, body }),
    acknowledged: (_status, text) => text === 'success',
    schedule: [1],
  });

  it('holds a callback delayed by an hour until releaseDelayed, then sends it once', async () => {
    const callbacks = new CallbackDispatcher({ timeScale: 1, now: () => new Date() });
    try {
      callbacks.setMode('delay', 1, 3_600_000);
      const held = callbacks.send(spec('late'));
      callbacks.send(spec('on-time'));
      // The on-time one arrives; the held one waits for its hour (it is counted, not sent).
      await vi.waitFor(() => expect(received).toEqual(['on-time']), { timeout: 5000, interval: 5 });
      expect(callbacks.delayedCount()).toBe(1);

      expect(callbacks.releaseDelayed()).toBe(1);
      expect(callbacks.delayedCount()).toBe(0);
      await callbacks.idle();
      expect(received).toEqual(['on-time', 'late']);
      expect(held).toMatchObject({ mode: 'delay', state: 'acknowledged', tries: 1 });
      expect(callbacks.releaseDelayed()).toBe(0);
    } finally {
      await callbacks.close();
    }
  });
});
