import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './helpers/backends.js';
import { newOrder, startTestApp, type TestApp } from './helpers/harness.js';

/**
 * Bad input gets a clear error and changes nothing. Each case: what is sent, the status and code
 * expected, and (for invalid_request) the field the error must name.
 */
type Case = [name: string, body: unknown, status: number, code: string, field?: string];

const cases: Case[] = [
  ['no body', undefined, 400, 'invalid_request'],
  ['a JSON array', [], 400, 'invalid_request'],
  [
    'missing merchantOrderId',
    newOrder({ merchantOrderId: undefined }),
    400,
    'invalid_request',
    'merchantOrderId',
  ],
  ['empty merchantOrderId', newOrder({ merchantOrderId: '' }), 400, 'invalid_request', 'merchantOrderId'],
  [
    'merchantOrderId of 65 chars',
    newOrder({ merchantOrderId: 'a'.repeat(65) }),
    400,
    'invalid_request',
    'merchantOrderId',
  ],
  [
    'merchantOrderId with a slash',
    newOrder({ merchantOrderId: 'a/b' }),
    400,
    'invalid_request',
    'merchantOrderId',
  ],
  [
    'merchantOrderId with Chinese',
    newOrder({ merchantOrderId: '订单1' }),
    400,
    'invalid_request',
    'merchantOrderId',
  ],
  ['missing subject', newOrder({ subject: undefined }), 400, 'invalid_request', 'subject'],
  ['empty subject', newOrder({ subject: '' }), 400, 'invalid_request', 'subject'],
  ['blank subject', newOrder({ subject: '   ' }), 400, 'invalid_request', 'subject'],
  ['subject of 129 chars', newOrder({ subject: 's'.repeat(129) }), 400, 'invalid_request', 'subject'],
  ['missing amount', newOrder({ amount: undefined }), 400, 'invalid_request', 'amount'],
  ['amount zero', newOrder({ amount: 0 }), 400, 'invalid_request', 'amount'],
  ['negative amount', newOrder({ amount: -5 }), 400, 'invalid_request', 'amount'],
  ['fractional amount (yuan, not fen)', newOrder({ amount: 12.34 }), 400, 'invalid_request', 'amount'],
  ['amount as a string', newOrder({ amount: '1234' }), 400, 'invalid_request', 'amount'],
  ['amount above 10^11', newOrder({ amount: 100_000_000_001 }), 400, 'invalid_request', 'amount'],
  ['currency USD', newOrder({ currency: 'USD' }), 400, 'invalid_request', 'currency'],
  ['expireInSeconds below 60', newOrder({ expireInSeconds: 59 }), 400, 'invalid_request', 'expireInSeconds'],
  [
    'expireInSeconds above a day',
    newOrder({ expireInSeconds: 86_401 }),
    400,
    'invalid_request',
    'expireInSeconds',
  ],
  [
    'javascript: notifyUrl',
    newOrder({ notifyUrl: 'javascript:alert(1)' }),
    400,
    'invalid_request',
    'notifyUrl',
  ],
  ['ftp returnUrl', newOrder({ returnUrl: 'ftp://shop.example/x' }), 400, 'invalid_request', 'returnUrl'],
  ['relative notifyUrl', newOrder({ notifyUrl: '/hooks' }), 400, 'invalid_request', 'notifyUrl'],
  [
    'notifyUrl with credentials',
    newOrder({ notifyUrl: 'https://u:p@shop.example/h' }),
    400,
    'invalid_request',
    'notifyUrl',
  ],
  [
    '21 metadata keys',
    newOrder({ metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }),
    400,
    'invalid_request',
    'metadata',
  ],
  ['a number in metadata', newOrder({ metadata: { n: 1 } }), 400, 'invalid_request', 'metadata.n'],
  [
    'a metadata key of 41 chars',
    newOrder({ metadata: { ['k'.repeat(41)]: 'v' } }),
    400,
    'invalid_request',
    'metadata',
  ],
  ['userIp not an address', newOrder({ userIp: 'localhost' }), 400, 'invalid_request', 'userIp'],
  ['an unknown field', newOrder({ amountYuan: '12.34' }), 400, 'invalid_request', 'amountYuan'],
  ['body over 1000 chars', newOrder({ body: 'b'.repeat(1001) }), 400, 'invalid_request', 'body'],
];

describe.each(backends())('bad inputs on %s', (backend) => {
  let t: TestApp;
  let apiKey: string;
  beforeAll(async () => {
    t = await startTestApp(backend, { PAYCENTER_BODY_LIMIT: '4096' });
    apiKey = (await t.createApp()).apiKey;
  });
  afterAll(() => t.close());

  it.each(cases)('POST /api/v1/orders with %s → %i %s', async (_name, body, status, code, field) => {
    const before = await t.count('orders');
    const res = await t.merchant(apiKey, 'POST', '/api/v1/orders', body);
    expect(res.statusCode).toBe(status);
    const error = res.json().error;
    expect(error.code).toBe(code);
    expect(error.message).toEqual(expect.any(String));
    if (field) {
      expect(error.field).toBe(field);
      expect(error.message).toContain(field);
    }
    expect(await t.count('orders')).toBe(before);
  });

  it('refuses malformed JSON, a wrong content type and an oversized body, writing nothing', async () => {
    const before = await t.count('orders');
    const send = (payload: string, contentType: string) =>
      t.runtime.http.inject({
        method: 'POST',
        url: '/api/v1/orders',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
        payload,
      });
    const malformed = await send('{"merchantOrderId": "a",', 'application/json');
    expect([malformed.statusCode, malformed.json().error.code]).toEqual([400, 'invalid_request']);
    expect(malformed.json().error.message).toBe('the body is not valid JSON');
    const wrongType = await send('merchantOrderId=a&amount=1', 'application/x-www-form-urlencoded');
    expect([wrongType.statusCode, wrongType.json().error.code]).toEqual([415, 'unsupported_media_type']);
    const huge = await send(
      JSON.stringify(newOrder({ body: 'x'.repeat(900), metadata: { a: 'y'.repeat(4000) } })),
      'application/json',
    );
    expect([huge.statusCode, huge.json().error.code]).toEqual([413, 'payload_too_large']);
    const proto = await send(
      '{"__proto__": {"admin": true}, "merchantOrderId": "p1", "subject": "s", "amount": 1}',
      'application/json',
    );
    expect(proto.statusCode).toBe(400);
    expect(await t.count('orders')).toBe(before);
  });

  it('refuses bad query parameters on the order list', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'status=lost', 'before=abc', 'color=red']) {
      const res = await t.merchant(apiKey, 'GET', `/api/v1/orders?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    // A status outside the list names the list.
    expect((await t.merchant(apiKey, 'GET', '/api/v1/orders?status=lost')).json().error).toMatchObject({
      field: 'status',
      message: 'querystring.status: must be one of "waiting", "paid", "closed", "refunded"',
    });
  });

  it('answers 404 for order ids that cannot exist', async () => {
    for (const id of ['0', 'abc', '-1', '1e3', '99999999999999999999', '999999']) {
      const res = await t.merchant(apiKey, 'GET', `/api/v1/orders/${id}`);
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
  });

  it('refuses bad admin input the same way', async () => {
    const before = await t.count('apps');
    const bad: [unknown, string][] = [
      [{ notifyUrl: 'https://x.example' }, 'name'],
      [{ name: 'x' }, 'notifyUrl'],
      [{ name: 'x', notifyUrl: 'mailto:a@b.c' }, 'notifyUrl'],
      [{ name: 'x', notifyUrl: 'https://x.example', notifySchedule: [] }, 'notifySchedule'],
      [{ name: 'x', notifyUrl: 'https://x.example', notifySchedule: [0] }, 'notifySchedule.0'],
      [{ name: 'x', notifyUrl: 'https://x.example', notifySchedule: [1.5] }, 'notifySchedule.0'],
      [{ name: 'x', notifyUrl: 'https://x.example', notifySchedule: [999_999_999] }, 'notifySchedule'],
      [{ name: '   ', notifyUrl: 'https://x.example' }, 'name'],
      [{ name: 'x', notifyUrl: 'https://x.example', secret: 'mine' }, 'secret'],
      [{ name: 'x', notifyUrl: 'https://x.example', autoRefundDuplicates: 'yes' }, 'autoRefundDuplicates'],
      [{ name: 'x', notifyUrl: 'https://x.example', autoRefundDuplicates: null }, 'autoRefundDuplicates'],
    ];
    for (const [body, field] of bad) {
      const res = await t.admin('POST', '/admin-api/apps', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'invalid_request', field });
    }
    expect(await t.count('apps')).toBe(before);
  });
});
