import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    callbacks.setMode('delay', 1, 3_600_000);
    const held = callbacks.send(spec('late'));
    callbacks.send(spec('on-time'));
    // The on-time one arrives; the held one does not, however long we wait for the first.
    for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received).toEqual(['on-time']);
    expect(callbacks.delayedCount()).toBe(1);

    expect(callbacks.releaseDelayed()).toBe(1);
    expect(callbacks.delayedCount()).toBe(0);
    await callbacks.idle();
    expect(received).toEqual(['on-time', 'late']);
    expect(held).toMatchObject({ mode: 'delay', state: 'acknowledged', tries: 1 });
    expect(callbacks.releaseDelayed()).toBe(0);
    await callbacks.close();
  });
});
