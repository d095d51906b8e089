import { createSign } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { fenToYuan, yuanToFen } from '../../src/channels/alipay/amount.js';
import {
  AlipayFormatError,
  AlipaySignatureError,
  type AlipaySignatureReason,
} from '../../src/channels/alipay/errors.js';
import {
  loadAlipayPrivateKey,
  loadAlipayPublicKey,
  rsa2Sign,
  rsa2Verify,
} from '../../src/channels/alipay/keys.js';
import {
  alipayResponseKey,
  extractAlipayResponseNode,
  signAlipayResponse,
  verifyAlipayResponse,
} from '../../src/channels/alipay/response.js';
import {
  alipayAppOrderString,
  alipayNotifyContent,
  alipayRequestParams,
  alipaySignContent,
  isAlipayEmpty,
  signAlipayNotify,
  signAlipayParams,
  signAlipayRequest,
  verifyAlipayNotify,
  verifyAlipayRequestSignature,
} from '../../src/channels/alipay/signature.js';
import { formatAlipayTime, parseAlipayTime } from '../../src/channels/alipay/time.js';
import { decodeForm, referenceNotifyBody } from './fixtures/alipay-reference.js';
import { newRsaPair } from './fixtures/keys.js';
import { ALI, B1_CONTENT, B1_PARAMS, B2_ERROR_NODE, B2_SUCCESS_NODE, B3_NOTIFY } from './fixtures/vectors.js';

const app = newRsaPair(); // the application's key pair: signs requests
const alipay = newRsaPair(); // "Alipay's" key pair: signs responses and notifies
const stranger = newRsaPair();

function reasonOf(fn: () => unknown): AlipaySignatureReason {
  try {
    fn();
  } catch (error) {
    if (error instanceof AlipaySignatureError) return error.reason;
    throw error;
  }
  throw new Error('expected an AlipaySignatureError, nothing was thrown');
}

describe('Alipay request signing (research §B.3, vectors §B1)', () => {
  it('builds the documented string to sign: sorted, sign_type kept, the empty app_auth_token left out', () => {
    expect(alipaySignContent(B1_PARAMS)).toBe(B1_CONTENT);
  });

  it('signs what it sends: empty parameters dropped, sign added, verifiable by the gateway rule', () => {
    const signed = signAlipayParams(B1_PARAMS, app.privateKey);
    expect(Object.keys(signed).sort()).toEqual(
      [
        'app_id',
        'biz_content',
        'charset',
        'format',
        'method',
        'notify_url',
        'sign',
        'sign_type',
        'timestamp',
        'version',
      ].sort(),
    );
    expect(rsa2Verify(B1_CONTENT, signed.sign as string, app.publicKey)).toBe(true);
    expect(verifyAlipayRequestSignature(signed, app.publicKey)).toBe(B1_CONTENT);
  });

  it('builds the common parameters with Beijing time and JSON biz_content', () => {
    const params = alipayRequestParams({
      appId: ALI.appId,
      method: 'alipay.trade.precreate',
      bizContent: { out_trade_no: 'PC20251123000002', total_amount: '88.88', subject: '测试商品' },
      now: new Date('2025-11-23T06:00:00Z'),
      notifyUrl: 'https://pay.example.com/notify/alipay',
      appAuthToken: '',
      returnUrl: undefined,
    });
    expect(params).toEqual({ ...B1_PARAMS, app_auth_token: undefined });
    expect(alipaySignContent(params)).toBe(B1_CONTENT);
    const signed = signAlipayRequest(
      {
        appId: ALI.appId,
        method: 'alipay.trade.query',
        bizContent: '{"out_trade_no":"X"}',
        now: new Date(0),
      },
      app.privateKey,
    );
    expect(signed).toMatchObject({ biz_content: '{"out_trade_no":"X"}', timestamp: '1970-01-01 08:00:00' });
    expect(verifyAlipayRequestSignature(signed, app.publicKey)).toContain('method=alipay.trade.query');
  });

  it('sorts keys by ASCII code (as Java does) and never URL-encodes values', () => {
    const content = alipaySignContent({ ab: '1', a_b: '2', aB: '3', 'a.b': 'x=y&z=%41 中' });
    expect(content).toBe('a.b=x=y&z=%41 中&aB=3&a_b=2&ab=1');
  });

  it("treats whitespace-only values as empty, as Alipay's StringUtils.isEmpty does", () => {
    expect(isAlipayEmpty(' ')).toBe(true);
    expect(isAlipayEmpty('\t\r\n')).toBe(true);
    expect(isAlipayEmpty('\u3000')).toBe(true);
    expect(isAlipayEmpty('\u00A0')).toBe(false); // Java: a no-break space is not whitespace
    expect(isAlipayEmpty(' x ')).toBe(false);
    expect(alipaySignContent({ a: '1', b: ' ', c: null, d: undefined, e: '', f: ' 2 ' })).toBe('a=1&f= 2 ');
    expect(signAlipayParams({ a: '1', b: ' ' }, app.privateKey)).not.toHaveProperty('b');
  });

  it('refuses a request without sign, with a non-RSA2 sign_type, by another key, or changed', () => {
    const signed = signAlipayParams(B1_PARAMS, app.privateKey);
    const { sign: _s, ...unsigned } = signed;
    expect(reasonOf(() => verifyAlipayRequestSignature(unsigned, app.publicKey))).toBe('missing_sign');
    expect(reasonOf(() => verifyAlipayRequestSignature({ ...signed, sign_type: 'RSA' }, app.publicKey))).toBe(
      'unsupported_sign_type',
    );
    const { sign_type: _t, ...noType } = signed;
    expect(reasonOf(() => verifyAlipayRequestSignature(noType, app.publicKey))).toBe('unsupported_sign_type');
    expect(reasonOf(() => verifyAlipayRequestSignature(signed, stranger.publicKey))).toBe('bad_signature');
    expect(
      reasonOf(() =>
        verifyAlipayRequestSignature({ ...signed, timestamp: '2025-11-23 14:00:01' }, app.publicKey),
      ),
    ).toBe('bad_signature');
    expect(
      reasonOf(() =>
        verifyAlipayRequestSignature({ ...signed, return_url: 'https://evil.example' }, app.publicKey),
      ),
    ).toBe('bad_signature');
  });
});

describe('Alipay app-pay order string (alipay_app)', () => {
  it('is the signed parameters, each value percent-encoded once, readable back into the same set', () => {
    const signed = signAlipayRequest(
      {
        appId: ALI.appId,
        method: 'alipay.trade.app.pay',
        bizContent: { out_trade_no: 'APP1', total_amount: '0.01', subject: 'A & B = C+D 中' },
        now: new Date('2025-11-23T06:00:00Z'),
        notifyUrl: 'https://pay.example.com/notify/order/7',
      },
      app.privateKey,
    );
    const orderString = alipayAppOrderString(signed);
    expect(orderString).not.toMatch(/[ +]|中/);
    expect(orderString).toContain('timestamp=2025-11-23%2014%3A00%3A00');
    expect(decodeForm(orderString)).toEqual(signed);
    expect(verifyAlipayRequestSignature(decodeForm(orderString), app.publicKey)).toContain(
      'method=alipay.trade.app.pay',
    );
    expect(() => alipayAppOrderString({ app_id: '1' })).toThrow(/signed/);
  });
});

describe('Alipay async notify verification (research §B.6, vectors §B3)', () => {
  const form = decodeForm(referenceNotifyBody(B3_NOTIFY, alipay.privateKey));

  it('verifies a notify as posted: sign and sign_type left out of the string', () => {
    expect(form.sign_type).toBe('RSA2');
    expect(verifyAlipayNotify(form, alipay.publicKey)).toEqual(form);
    expect(alipayNotifyContent(form)).not.toContain('sign');
    expect(alipayNotifyContent(form).startsWith('app_id=2021000000000001&auth_app_id=')).toBe(true);
  });

  it('verifies a partial-refund notify', () => {
    const refund = decodeForm(
      referenceNotifyBody(
        {
          ...B3_NOTIFY,
          notify_id: '2025112300222150000000009876543210',
          out_biz_no: 'RF20251123000001',
          refund_fee: '8.88',
          gmt_refund: '2025-11-23 15:00:00.123',
        },
        alipay.privateKey,
      ),
    );
    expect(verifyAlipayNotify(refund, alipay.publicKey).refund_fee).toBe('8.88');
  });

  it('verifies a notify without sign_type (it is not signed)', () => {
    const { sign_type: _t, ...noType } = form;
    expect(verifyAlipayNotify(noType, alipay.publicKey).out_trade_no).toBe('PC20251123000002');
  });

  it('refuses a notify without sign', () => {
    const { sign: _s, ...unsigned } = form;
    expect(reasonOf(() => verifyAlipayNotify(unsigned, alipay.publicKey))).toBe('missing_sign');
    expect(reasonOf(() => verifyAlipayNotify({ ...form, sign: '' }, alipay.publicKey))).toBe('missing_sign');
  });

  it('refuses a tampered amount', () => {
    expect(reasonOf(() => verifyAlipayNotify({ ...form, total_amount: '0.01' }, alipay.publicKey))).toBe(
      'bad_signature',
    );
  });

  it('refuses an added field', () => {
    expect(reasonOf(() => verifyAlipayNotify({ ...form, passback_params: 'x' }, alipay.publicKey))).toBe(
      'bad_signature',
    );
  });

  it('refuses a notify signed by another key (e.g. our own application key)', () => {
    expect(reasonOf(() => verifyAlipayNotify(form, app.publicKey))).toBe('bad_signature');
    const forged = decodeForm(referenceNotifyBody(B3_NOTIFY, stranger.privateKey));
    expect(reasonOf(() => verifyAlipayNotify(forged, alipay.publicKey))).toBe('bad_signature');
  });

  it('refuses a SHA1 (RSA) sign_type and a field given twice', () => {
    expect(reasonOf(() => verifyAlipayNotify({ ...form, sign_type: 'RSA' }, alipay.publicKey))).toBe(
      'unsupported_sign_type',
    );
    expect(reasonOf(() => verifyAlipayNotify({ ...form, out_trade_no: ['A', 'B'] }, alipay.publicKey))).toBe(
      'malformed_notify',
    );
  });

  it('refuses a sign that is not base64', () => {
    expect(reasonOf(() => verifyAlipayNotify({ ...form, sign: `${form.sign}!` }, alipay.publicKey))).toBe(
      'bad_signature',
    );
  });

  it('verifies a value holding "%" as received (decoded once, never twice)', () => {
    const pct = decodeForm(
      referenceNotifyBody({ ...B3_NOTIFY, passback_params: 'order%3D42%26src%3Dweb' }, alipay.privateKey),
    );
    expect(verifyAlipayNotify(pct, alipay.publicKey).passback_params).toBe('order%3D42%26src%3Dweb');
  });

  it("verifies a notify carrying an empty field (not signed, by Alipay's rule)", () => {
    const withEmpty = decodeForm(referenceNotifyBody({ ...B3_NOTIFY, body: '' }, alipay.privateKey));
    expect(withEmpty.body).toBe('');
    expect(verifyAlipayNotify(withEmpty, alipay.publicKey).body).toBe('');
  });

  it("also verifies one signed with the empty field as 'key=' (Java rsaCheckV1), and still refuses a changed value", () => {
    const fields = { ...B3_NOTIFY, body: '' };
    const content = Object.keys(fields)
      .sort()
      .map((k) => `${k}=${fields[k as keyof typeof fields]}`)
      .join('&');
    expect(content).toContain('&body=&');
    const sign = createSign('RSA-SHA256').update(content, 'utf8').sign(alipay.privateKey, 'base64');
    const form = { ...fields, sign, sign_type: 'RSA2' };
    expect(verifyAlipayNotify(form, alipay.publicKey).sign).toBe(sign);
    expect(reasonOf(() => verifyAlipayNotify({ ...form, total_amount: '0.01' }, alipay.publicKey))).toBe(
      'bad_signature',
    );
    // Without any empty field in the form, that second string is never tried.
    const { body: _b, ...noEmpty } = form;
    expect(reasonOf(() => verifyAlipayNotify(noEmpty, alipay.publicKey))).toBe('bad_signature');
  });
});

describe('Alipay notify signing (the sandbox side)', () => {
  it('drops empty fields, adds sign_type=RSA2, signs without sign/sign_type', () => {
    const signed = signAlipayNotify(
      { ...B3_NOTIFY, body: '', passback_params: ' ', sign: 'old', sign_type: 'RSA' },
      alipay.privateKey,
    );
    expect(signed).not.toHaveProperty('body');
    expect(signed).not.toHaveProperty('passback_params');
    expect(signed.sign_type).toBe('RSA2');
    expect(signed.sign).not.toBe('old');
    expect(rsa2Verify(alipayNotifyContent(B3_NOTIFY), signed.sign as string, alipay.publicKey)).toBe(true);
    const posted = decodeForm(new URLSearchParams(signed).toString());
    expect(verifyAlipayNotify(posted, alipay.publicKey)).toEqual(signed);
  });
});

describe('Alipay gateway responses (research §B.4, vectors §B2)', () => {
  const method = 'alipay.trade.precreate';
  const body = signAlipayResponse({ method, node: B2_SUCCESS_NODE, privateKey: alipay.privateKey });

  it('signs the exact node text and writes {"<method>_response":node,"sign":…}', () => {
    expect(alipayResponseKey(method)).toBe('alipay_trade_precreate_response');
    expect(body.startsWith(`{"alipay_trade_precreate_response":${B2_SUCCESS_NODE},"sign":"`)).toBe(true);
    expect(rsa2Verify(B2_SUCCESS_NODE, JSON.parse(body).sign, alipay.publicKey)).toBe(true);
  });

  it('verifies the node cut from the raw text and returns it parsed', () => {
    expect(verifyAlipayResponse(body, method, alipay.publicKey)).toEqual({
      key: 'alipay_trade_precreate_response',
      text: B2_SUCCESS_NODE,
      node: JSON.parse(B2_SUCCESS_NODE),
    });
  });

  it('verifies a business failure (40004) signed the same way', () => {
    const failure = signAlipayResponse({
      method: 'alipay.trade.query',
      node: B2_ERROR_NODE,
      privateKey: alipay.privateKey,
    });
    expect(verifyAlipayResponse(failure, 'alipay.trade.query', alipay.publicKey).node.sub_code).toBe(
      'ACQ.TRADE_NOT_EXIST',
    );
  });

  it('keeps the raw text: spacing, escapes, braces and "sign" inside strings, nested objects', () => {
    const node =
      '{ "code" : "10000",\n "msg":"Success", "note":"a } { \\"sign\\":\\"x\\" }", "detail":{"fund_bill_list":[{"amount":"1.00"}]},"qr_code":"https:\\/\\/qr.alipay.com\\/bax"}';
    const raw = `{"alipay_trade_query_response":${node},\n "sign":"${rsa2Sign(node, alipay.privateKey)}","alipay_cert_sn":"abc123"}`;
    const node2 = extractAlipayResponseNode(raw, 'alipay.trade.query');
    expect(node2).toEqual({
      key: 'alipay_trade_query_response',
      text: node,
      sign: expect.any(String),
      certSn: 'abc123',
    });
    expect(verifyAlipayResponse(raw, 'alipay.trade.query', alipay.publicKey).node.note).toBe(
      'a } { "sign":"x" }',
    );
  });

  it('verifies when sign comes before the node', () => {
    const raw = `{"sign":"${rsa2Sign(B2_SUCCESS_NODE, alipay.privateKey)}","alipay_trade_precreate_response":${B2_SUCCESS_NODE}}`;
    expect(verifyAlipayResponse(raw, method, alipay.publicKey).text).toBe(B2_SUCCESS_NODE);
  });

  it('falls back to \\/ read as / when the signature covers the unescaped text', () => {
    const escaped = B2_SUCCESS_NODE.replaceAll('/', '\\/');
    const raw = `{"alipay_trade_precreate_response":${escaped},"sign":"${rsa2Sign(B2_SUCCESS_NODE, alipay.privateKey)}"}`;
    expect(verifyAlipayResponse(raw, method, alipay.publicKey).node.qr_code).toBe(
      'https://qr.alipay.com/bax00000simulator',
    );
  });

  it('reads error_response when the method node is absent', () => {
    const node =
      '{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}';
    const unsigned = `{"error_response":${node}}`;
    expect(extractAlipayResponseNode(unsigned, method)).toMatchObject({
      key: 'error_response',
      text: node,
      sign: undefined,
    });
    expect(reasonOf(() => verifyAlipayResponse(unsigned, method, alipay.publicKey))).toBe('missing_sign');
    const signed = signAlipayResponse({ method, node, privateKey: alipay.privateKey, gatewayError: true });
    expect(verifyAlipayResponse(signed, method, alipay.publicKey).key).toBe('error_response');
  });

  it('refuses an unsigned success', () => {
    expect(
      reasonOf(() =>
        verifyAlipayResponse(
          `{"alipay_trade_precreate_response":${B2_SUCCESS_NODE}}`,
          method,
          alipay.publicKey,
        ),
      ),
    ).toBe('missing_sign');
  });

  it('refuses a tampered node, and a node verified with another key', () => {
    expect(
      reasonOf(() =>
        verifyAlipayResponse(body.replace('PC20251123000002', 'PC20251123000003'), method, alipay.publicKey),
      ),
    ).toBe('bad_signature');
    expect(reasonOf(() => verifyAlipayResponse(body, method, stranger.publicKey))).toBe('bad_signature');
    // Re-serialising (here: adding a space) changes the text the signature covers.
    expect(
      reasonOf(() =>
        verifyAlipayResponse(body.replace('"code":"10000"', '"code": "10000"'), method, alipay.publicKey),
      ),
    ).toBe('bad_signature');
  });

  it('refuses a body that is not JSON, lacks the node, or names the node twice', () => {
    expect(reasonOf(() => verifyAlipayResponse('<html>502</html>', method, alipay.publicKey))).toBe(
      'malformed_response',
    );
    expect(reasonOf(() => verifyAlipayResponse('[]', method, alipay.publicKey))).toBe('malformed_response');
    expect(reasonOf(() => verifyAlipayResponse(body, 'alipay.trade.query', alipay.publicKey))).toBe(
      'malformed_response',
    );
    const twice = body.replace(
      '{"alipay_trade_precreate_response":',
      '{"alipay_trade_precreate_response":{"code":"40004"},"alipay_trade_precreate_response":',
    );
    expect(reasonOf(() => verifyAlipayResponse(twice, method, alipay.publicKey))).toBe('malformed_response');
    const notObject = `{"alipay_trade_precreate_response":"x","sign":"${rsa2Sign('"x"', alipay.privateKey)}"}`;
    expect(reasonOf(() => verifyAlipayResponse(notObject, method, alipay.publicKey))).toBe(
      'malformed_response',
    );
  });
});

describe('Alipay amounts (yuan strings ⇄ fen, never through floats)', () => {
  it.each([
    ['12.34', 1234],
    ['12.3', 1230],
    ['12', 1200],
    ['0.01', 1],
    ['0.00', 0],
    ['0.29', 29],
    ['1.15', 115],
    ['4.35', 435],
    ['100000000.00', 10_000_000_000],
    ['90071992547409.91', 9_007_199_254_740_991],
  ])('%s yuan is %d fen', (yuan, fen) => {
    expect(yuanToFen(yuan)).toBe(fen);
  });

  it.each([
    '',
    ' 1.00',
    '1.00 ',
    '-1.00',
    '+1.00',
    '1.005',
    '1.',
    '.5',
    '01.00',
    '00',
    '1e2',
    '1,000.00',
    'NaN',
    'Infinity',
    '１２',
    '0x10',
    '90071992547409.92',
  ])('refuses the malformed amount %j', (bad) => {
    expect(() => yuanToFen(bad)).toThrow(AlipayFormatError);
  });

  it('refuses a non-string', () => {
    expect(() => yuanToFen(12.34 as unknown as string)).toThrow(AlipayFormatError);
  });

  it.each([
    [1234, '12.34'],
    [5, '0.05'],
    [50, '0.50'],
    [0, '0.00'],
    [100, '1.00'],
    [10_000_000_000, '100000000.00'],
  ])('%d fen is %s yuan', (fen, yuan) => {
    expect(fenToYuan(fen)).toBe(yuan);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])('refuses %d fen', (fen) => {
    expect(() => fenToYuan(fen)).toThrow(AlipayFormatError);
  });

  it('round-trips every amount up to 200.00 yuan exactly', () => {
    for (let fen = 0; fen <= 20_000; fen++) {
      if (yuanToFen(fenToYuan(fen)) !== fen) throw new Error(`${fen} does not round-trip`);
    }
    expect(yuanToFen(fenToYuan(20_000))).toBe(20_000);
  });
});

describe('Alipay times (Beijing, whatever the machine zone)', () => {
  const savedTz = process.env.TZ;
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ;
    else process.env.TZ = savedTz;
  });

  it.each([
    ['UTC', 6],
    ['America/Los_Angeles', 22],
    ['Asia/Shanghai', 14],
    ['Pacific/Kiritimati', 20],
  ])('formats in UTC+8 with TZ=%s', (tz, localHour) => {
    process.env.TZ = tz;
    expect(new Date('2025-11-23T06:00:00Z').getHours()).toBe(localHour); // the zone really changed
    expect(formatAlipayTime(new Date('2025-11-23T06:00:00.999Z'))).toBe('2025-11-23 14:00:00');
    expect(formatAlipayTime(new Date('2025-12-31T16:00:00Z'))).toBe('2026-01-01 00:00:00');
  });

  it('parses Alipay times as UTC+8, with optional milliseconds', () => {
    expect(parseAlipayTime('2025-11-23 14:05:07').toISOString()).toBe('2025-11-23T06:05:07.000Z');
    expect(parseAlipayTime('2025-11-23 15:00:00.123').toISOString()).toBe('2025-11-23T07:00:00.123Z');
    expect(parseAlipayTime('2026-01-01 00:00:00').toISOString()).toBe('2025-12-31T16:00:00.000Z');
  });

  it.each([
    '2025-11-23T14:05:07',
    '2025-11-23 14:05',
    '2025-02-29 00:00:00',
    '2025-11-23 24:00:00',
    '20251123140507',
    '',
  ])('refuses %j', (bad) => {
    expect(() => parseAlipayTime(bad)).toThrow(AlipayFormatError);
  });
});

describe('Alipay keys', () => {
  it('reads PEM and the bare base64 Alipay hands out, PKCS#8 and PKCS#1', () => {
    const bare = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const pkcs1 = app.privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
    for (const key of [app.privatePem, bare(app.privatePem), pkcs1]) {
      const sig = rsa2Sign('x', loadAlipayPrivateKey(key));
      expect(rsa2Verify('x', sig, loadAlipayPublicKey(bare(app.publicPem)))).toBe(true);
    }
    expect(() => loadAlipayPrivateKey('not a key!')).toThrow();
  });
});
