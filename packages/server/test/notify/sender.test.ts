import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookSender } from '../../src/notify/sender.js';
import { Receiver } from '../helpers/webhook-receiver.js';
import { holdAnswers } from './helpers.js';

const key = Buffer.alloc(32, 3);
const message = (url: string) => ({
  url,
  webhookId: '7',
  body: '{"id":"7"}',
  secretKey: key,
  timestamp: new Date(),
});

describe('sending one webhook', () => {
  let receiver: Receiver;
  let sender: WebhookSender;

  beforeAll(async () => {
    receiver = await Receiver.start();
    sender = new WebhookSender({ allowPrivate: true, timeoutMs: 300 });
  });
  afterAll(async () => {
    await sender.close();
    await receiver.close();
  });
  afterEach(() => {
    receiver.requests.length = 0;
    receiver.respond = () => ({ status: 200, body: 'SUCCESS' });
  });

  it('does not follow a redirect: a 3xx is a failed try', async () => {
    receiver.respond = (_r, index) =>
      index === 0 ? { status: 302, headers: { location: receiver.url('/elsewhere') } } : { status: 200 };
    const result = await sender.send(message(receiver.url()));
    expect(result).toMatchObject({
      outcome: { delivered: false, reason: 'HTTP 302 (redirects are not followed)' },
      httpStatus: 302,
      error: null,
    });
    expect(receiver.requests).toHaveLength(1);
  });

  it('gives up after the timeout', async () => {
    const held = holdAnswers(receiver);
    const result = await sender.send(message(receiver.url()));
    held.open();
    expect(result).toMatchObject({
      outcome: { delivered: false },
      httpStatus: null,
      error: 'timeout: no complete answer within 300 ms',
      refused: false,
    });
    expect(result.durationMs).toBeGreaterThanOrEqual(290);
  });

  it('reports a refused connection', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await sender.send(message(`http://127.0.0.1:${port}/`));
    expect(result).toMatchObject({ httpStatus: null, refused: false });
    expect(result.error).toMatch(/^connection refused \(ECONNREFUSED/);
  });

  it.each(['not a url', 'ftp://127.0.0.1/hook', ''])(
    'reports the malformed URL %j as a failed try, not a throw',
    async (url) => {
      const result = await sender.send(message(url));
      expect(result).toMatchObject({ outcome: { delivered: false }, httpStatus: null, refused: false });
      // It says what is wrong with the URL (nothing could have reached the receiver).
      expect(result.error).toMatch(/url|protocol/i);
    },
  );

  it('reads a long answer only up to a cap and keeps a 2 KB excerpt', async () => {
    receiver.respond = () => ({ status: 200, body: 'x'.repeat(200_000) });
    const result = await sender.send(message(receiver.url()));
    expect(result.outcome.delivered).toBe(true);
    expect(result.excerpt).toBe('x'.repeat(2048));
  });

  it('keeps the connection alive between webhooks', async () => {
    receiver.respond = () => ({ status: 204 });
    const fresh = new WebhookSender({ allowPrivate: true });
    for (let i = 0; i < 10; i++) await fresh.send(message(receiver.url()));
    await fresh.close();
    expect(receiver.requests).toHaveLength(10);
    // undici may open a second connection while the first is being handed back to its pool.
    expect(new Set(receiver.requests.map((r) => r.remotePort)).size).toBeLessThanOrEqual(2);
  });
});

describe('the private-address refusal', () => {
  let receiver: Receiver;
  let sender: WebhookSender;

  beforeAll(async () => {
    receiver = await Receiver.start();
    sender = new WebhookSender({ allowPrivate: false, timeoutMs: 2000 });
  });
  afterAll(async () => {
    await sender.close();
    await receiver.close();
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['169.254.169.254', 'metadata'],
    ['10.1.2.3', 'private'],
    ['localhost', 'loopback'],
  ])('refuses %s before connecting (%s)', async (host, kind) => {
    const result = await sender.send(message(`http://${host}:${receiver.port}/hook`));
    expect(result).toMatchObject({ refused: true, httpStatus: null, outcome: { delivered: false } });
    expect(result.error).toContain(`a ${kind} address`);
    expect(receiver.requests).toHaveLength(0);
  });
});
