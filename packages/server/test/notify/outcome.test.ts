import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { forbiddenAddressKind } from '../../src/notify/address-guard.js';
import { Summary } from '../../src/notify/metrics.js';
import { judgeResponse } from '../../src/notify/outcome.js';
import {
  DEFAULT_NOTIFY_SCHEDULE,
  delayAfterAttempt,
  maxAttemptsOf,
  parseNotifySchedule,
} from '../../src/notify/schedule.js';
import { excerptOf, signWebhook, webhookBody, webhookSecretKey } from '../../src/notify/sender.js';

describe('the outcome rule', () => {
  it.each([
    [200, 'SUCCESS', true],
    [200, 'success', true],
    [200, '', true],
    [204, '', true],
    [201, 'OK', true],
    [299, 'fine', true],
    [200, '{"code":0}', true],
    [200, '{"code":"0"}', true],
    [200, '{"code":"SUCCESS","message":"成功"}', true],
    [200, '  {"code": 0}  ', true],
    [200, '\uFEFF{"code":0}', true],
    [200, '{"ok":true}', true],
    [200, '{"code":null}', true],
    [200, '[{"code":500}]', true],
    [200, '"FAIL"', true],
    [200, '500', true],
    [200, '{"code":500', true],
    [200, '{"code":500}', false],
    [200, '{"code":1}', false],
    [200, '{"code":"FAIL","message":"busy"}', false],
    [200, '{"code":"success"}', false],
    [200, '{"code":"00"}', false],
    [200, '{"code":false}', false],
    [200, '{"code":{}}', false],
    [200, '{"code":[]}', false],
    [204, '{"code":1}', false],
    [301, '', false],
    [302, 'SUCCESS', false],
    [304, '', false],
    [400, 'SUCCESS', false],
    [404, '{"code":0}', false],
    [500, 'SUCCESS', false],
    [503, '', false],
    [100, '', false],
  ] as const)('HTTP %i %j → delivered: %s', (status, body, delivered) => {
    const outcome = judgeResponse(status, body);
    expect(outcome.delivered).toBe(delivered);
    if (!outcome.delivered) expect(outcome.reason).toMatch(new RegExp(`HTTP ${status}`));
  });

  it('says why an answer did not deliver', () => {
    expect(judgeResponse(302, '')).toEqual({
      delivered: false,
      reason: 'HTTP 302 (redirects are not followed)',
    });
    expect(judgeResponse(200, '{"code":"FAIL"}')).toEqual({
      delivered: false,
      reason: `HTTP 200 but the body's code is "FAIL" (expected 0, "0" or "SUCCESS")`,
    });
  });
});

describe('the schedule', () => {
  it('defaults to the seed schedule: nine tries over about four hours', () => {
    expect(DEFAULT_NOTIFY_SCHEDULE).toEqual([15, 15, 30, 180, 1800, 1800, 1800, 3600]);
    expect(maxAttemptsOf(DEFAULT_NOTIFY_SCHEDULE)).toBe(9);
    expect(DEFAULT_NOTIFY_SCHEDULE.reduce((a, b) => a + b, 0)).toBe(9240);
  });

  it('waits the n-th delay after the n-th try, and the last delay beyond the schedule', () => {
    expect([1, 2, 3, 4, 8].map((n) => delayAfterAttempt(DEFAULT_NOTIFY_SCHEDULE, n))).toEqual([
      15, 15, 30, 180, 3600,
    ]);
    expect(delayAfterAttempt([5, 10], 7)).toBe(10);
  });

  it('parses PAYCENTER_NOTIFY_SCHEDULE in seconds or with units', () => {
    expect(parseNotifySchedule('15,15,30,180,1800,1800,1800,3600')).toEqual([...DEFAULT_NOTIFY_SCHEDULE]);
    expect(parseNotifySchedule(' 15s, 15s ,30s,3m,30m,1h,1d ')).toEqual([15, 15, 30, 180, 1800, 3600, 86400]);
    expect(parseNotifySchedule('1')).toEqual([1]);
  });

  it.each(['', ',', '0', '-5', '1.5', '15,abc', '8d', '15;30', Array(31).fill('1').join(',')])(
    'refuses %j with a clear message',
    (raw) => {
      const fail = (message: string) => new Error(`PAYCENTER_NOTIFY_SCHEDULE ${message}`);
      expect(() => parseNotifySchedule(raw, fail)).toThrow(
        /^PAYCENTER_NOTIFY_SCHEDULE (must list|has an invalid)/,
      );
    },
  );
});

describe('the signature', () => {
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  it('is Standard Webhooks: v1,base64(HMAC-SHA256(id.timestamp.body)) with the decoded secret', () => {
    const body = webhookBody({
      id: '42',
      type: 'order.paid',
      createdAt: new Date('2026-03-01T08:00:00Z'),
      data: { amount: 1 },
    });
    expect(body).toBe(
      '{"id":"42","type":"order.paid","createdAt":"2026-03-01T08:00:00.000Z","data":{"amount":1}}',
    );
    const signature = signWebhook(webhookSecretKey(secret), '42', 1_772_352_000, body);
    const expected = createHmac('sha256', Buffer.alloc(32, 7))
      .update(`42.1772352000.${body}`)
      .digest('base64');
    expect(signature).toBe(`v1,${expected}`);
    // The reference library computes the same.
    expect(new Webhook(secret).sign('42', new Date(1_772_352_000_000), body)).toBe(signature);
  });
});

describe('the address check', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.1.2.3', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['10.0.0.8', 'private'],
    ['172.16.5.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.10.10', 'link-local'],
    ['fe80::1', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.254', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:c0a8:101::1', 'private'],
  ])('refuses %s (%s)', (address, kind) => {
    expect(forbiddenAddressKind(address)).toBe(kind);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '203.0.113.9',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
  ])('allows the public address %s', (address) => {
    expect(forbiddenAddressKind(address)).toBeUndefined();
  });
});

describe('the response excerpt', () => {
  it('keeps at most 2 KB without cutting a character, and no NUL', () => {
    const text = `${'a'.repeat(2047)}茶茶`;
    const excerpt = excerptOf(Buffer.from(text));
    expect(Buffer.byteLength(excerpt)).toBeLessThanOrEqual(2048);
    expect(excerpt).toBe('a'.repeat(2047));
    expect(excerptOf(Buffer.from('a\u0000b'))).toBe('a\uFFFDb');
  });
});

describe('the delivery metrics summary', () => {
  it('reads 0 without samples, and nearest-rank quantiles of the recent window', () => {
    const summary = new Summary(10);
    expect(summary.snapshot()).toEqual({ count: 0, sum: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0 });
    for (let i = 100; i >= 1; i--) summary.observe(i);
    // All 100 counted; the quantiles come from the last 10 samples (10 … 1).
    expect(summary.snapshot()).toEqual({ count: 100, sum: 5050, min: 1, max: 100, p50: 5, p90: 9, p99: 10 });
    expect(summary.quantile(0.5)).toBe(5);
  });
});
