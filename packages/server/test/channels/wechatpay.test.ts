import { createHash, createSecretKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  aesGcmOpen,
  decryptWechatPayResource,
  encryptWechatPayResource,
  type WechatPayEncryptedResource,
} from '../../src/channels/wechatpay/aead.js';
import {
  openWechatPayCallback,
  parseWechatPayCallbackEnvelope,
} from '../../src/channels/wechatpay/callback.js';
import {
  WechatPayFormatError,
  WechatPaySignatureError,
  type WechatPaySignatureReason,
} from '../../src/channels/wechatpay/errors.js';
import {
  appPaySignMessage,
  jsapiPaySignMessage,
  wechatPayAppParams,
  wechatPayJsapiParams,
} from '../../src/channels/wechatpay/invoke.js';
import { loadApiV3Key, loadRsaPublicKey, platformKeyMap } from '../../src/channels/wechatpay/keys.js';
import { randomNonce, rsaSha256Verify } from '../../src/channels/wechatpay/rsa.js';
import {
  canonicalUrl,
  formatAuthorization,
  parseAuthorization,
  requestSignatureMessage,
  responseSignatureMessage,
  signWechatPayRequest,
  signWechatPayResponse,
  verifyWechatPayRequest,
  verifyWechatPaySignature,
} from '../../src/channels/wechatpay/signature.js';
import { formatWechatPayTime, parseWechatPayTime } from '../../src/channels/wechatpay/time.js';
import { newRsaPair } from './fixtures/keys.js';
import {
  A4_AAD,
  A4_NONCE,
  A4_SHA256_OF_CIPHERTEXT,
  A4_TRANSACTION,
  FIXED_NONCE,
  FIXED_TS,
  NATIVE_BODY,
  WX,
  WX_DOC,
  WX_DOC_TEST_PUBLIC_KEY,
  WX_GO_SDK_GCM,
} from './fixtures/vectors.js';

const merchant = newRsaPair();
const platform = newRsaPair();
const otherPlatform = newRsaPair();
const at = (seconds: number) => new Date(seconds * 1000);
const platformKeys = platformKeyMap({ [WX.pubKeyId]: platform.publicKey });

/** Runs `fn` and returns the reason of the WechatPaySignatureError it throws (fails if it does not throw one). */
function reasonOf(fn: () => unknown): WechatPaySignatureReason {
  try {
    fn();
  } catch (error) {
    if (error instanceof WechatPaySignatureError) return error.reason;
    throw error;
  }
  throw new Error('expected a WechatPaySignatureError, nothing was thrown');
}

describe('WeChat Pay official known-answer vectors (channel-vectors §A1)', () => {
  const docKey = loadRsaPublicKey(WX_DOC_TEST_PUBLIC_KEY);
  const docAuthorization = formatAuthorization({
    mchId: '1900007291',
    nonce: WX_DOC.nonce,
    timestamp: WX_DOC.timestamp,
    serialNo: '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C',
    signature: WX_DOC.requestSignature,
  });
  const verifyDoc = (body: string, url = '/v3/pay/transactions/jsapi') =>
    verifyWechatPayRequest({
      method: 'POST',
      url,
      body,
      authorization: docAuthorization,
      resolveKey: (mchId) => (mchId === '1900007291' ? docKey : undefined),
      now: at(Number(WX_DOC.timestamp)),
    });

  it('our request message verifies the signature WeChat publishes for POST /v3/pay/transactions/jsapi', () => {
    expect(verifyDoc(WX_DOC.body)).toMatchObject({ mchId: '1900007291', nonce: WX_DOC.nonce });
  });

  it('the published signature no longer verifies once the body or the URL changes', () => {
    expect(reasonOf(() => verifyDoc(WX_DOC.body.replace('"total":100', '"total":1')))).toBe('bad_signature');
    expect(reasonOf(() => verifyDoc(WX_DOC.body, '/v3/pay/transactions/native'))).toBe('bad_signature');
  });

  it('our JSAPI paySign message verifies the published paySign, our APP message the published sign', () => {
    const jsapi = jsapiPaySignMessage(WX_DOC.appId, WX_DOC.timestamp, WX_DOC.nonce, WX_DOC.prepayId);
    const app = appPaySignMessage(WX_DOC.appId, WX_DOC.timestamp, WX_DOC.nonce, WX_DOC.prepayId);
    expect(rsaSha256Verify(jsapi, WX_DOC.jsapiPaySign, docKey)).toBe(true);
    expect(rsaSha256Verify(app, WX_DOC.appSign, docKey)).toBe(true);
    // The two strings differ only by the "prepay_id=" prefix, and are not interchangeable.
    expect(rsaSha256Verify(app, WX_DOC.jsapiPaySign, docKey)).toBe(false);
    expect(rsaSha256Verify(jsapi, WX_DOC.appSign, docKey)).toBe(false);
  });

  it('decrypts the official Go SDK GCM vector (ciphertext ‖ tag, UTF-8 nonce and AAD)', () => {
    const v = WX_GO_SDK_GCM;
    expect(aesGcmOpen(createSecretKey(Buffer.from(v.key)), v.nonce, v.associatedData, v.ciphertext)).toBe(
      v.plaintext,
    );
    // The resource API is AES-256 only: the same 16-byte key is refused there.
    expect(() =>
      decryptWechatPayResource(
        {
          algorithm: 'AEAD_AES_256_GCM',
          ciphertext: v.ciphertext,
          associated_data: v.associatedData,
          nonce: v.nonce,
        },
        v.key,
      ),
    ).toThrow(/32 bytes/);
  });

  it('reproduces the recorded AEAD_AES_256_GCM ciphertext of §A4', () => {
    const plaintext = JSON.stringify(A4_TRANSACTION);
    const resource = encryptWechatPayResource({
      plaintext,
      apiV3Key: WX.apiV3Key,
      nonce: A4_NONCE,
      associatedData: A4_AAD,
    });
    expect(createHash('sha256').update(resource.ciphertext).digest('hex')).toBe(A4_SHA256_OF_CIPHERTEXT);
    expect(Buffer.from(resource.ciphertext, 'base64').length).toBe(Buffer.byteLength(plaintext) + 16);
    expect(resource).toMatchObject({
      algorithm: 'AEAD_AES_256_GCM',
      associated_data: 'transaction',
      nonce: A4_NONCE,
    });
    expect(decryptWechatPayResource(resource, WX.apiV3Key)).toBe(plaintext);
  });
});

describe('WeChat Pay request signing', () => {
  it('builds the five-line message with a line feed after every line, the body line included', () => {
    expect(
      requestSignatureMessage(
        'post',
        '/v3/pay/transactions/native',
        FIXED_TS,
        FIXED_NONCE,
        NATIVE_BODY,
      ).toString(),
    ).toBe(`POST\n/v3/pay/transactions/native\n1763877600\n${FIXED_NONCE}\n${NATIVE_BODY}\n`);
    const get = requestSignatureMessage(
      'GET',
      '/v3/pay/transactions/out-trade-no/PC1?mchid=1900000001',
      FIXED_TS,
      'n',
    );
    expect(get.toString()).toBe(
      'GET\n/v3/pay/transactions/out-trade-no/PC1?mchid=1900000001\n1763877600\nn\n\n',
    );
  });

  it('refuses to sign a full URL instead of path and query', () => {
    expect(() => requestSignatureMessage('GET', 'https://api.mch.weixin.qq.com/v3/x', 1, 'n')).toThrow(
      TypeError,
    );
  });

  it('signs with the documented Authorization header, deterministically, verifiable with the merchant key', () => {
    const input = {
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      privateKey: merchant.privateKey,
      method: 'POST',
      url: '/v3/pay/transactions/native',
      body: NATIVE_BODY,
      now: new Date(FIXED_TS * 1000 + 999),
      nonce: FIXED_NONCE,
    };
    const signed = signWechatPayRequest(input);
    expect(signed.timestamp).toBe('1763877600');
    expect(signed.authorization).toBe(
      `WECHATPAY2-SHA256-RSA2048 mchid="${WX.mchid}",nonce_str="${FIXED_NONCE}",timestamp="1763877600",` +
        `serial_no="${WX.merchantSerial}",signature="${signed.signature}"`,
    );
    expect(signWechatPayRequest(input).signature).toBe(signed.signature);
    const message = `POST\n/v3/pay/transactions/native\n1763877600\n${FIXED_NONCE}\n${NATIVE_BODY}\n`;
    expect(rsaSha256Verify(message, signed.signature, merchant.publicKey)).toBe(true);
  });

  it('makes a fresh 32-character nonce when none is given', () => {
    const a = signWechatPayRequest({
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      privateKey: merchant.privateKey,
      method: 'GET',
      url: '/v3/certificates',
      now: at(FIXED_TS),
    });
    const b = randomNonce();
    expect(a.nonce).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(b).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(a.nonce).not.toBe(b);
  });

  it('canonicalUrl keeps a base path and the query exactly as the URL will send them', () => {
    expect(
      canonicalUrl('http://127.0.0.1:8080/__sandbox/wechatpay/v3/pay/transactions/id/42?mchid=1900000001'),
    ).toBe('/__sandbox/wechatpay/v3/pay/transactions/id/42?mchid=1900000001');
    expect(canonicalUrl(new URL('https://api.mch.weixin.qq.com/v3/x/a b?q=中'))).toBe(
      '/v3/x/a%20b?q=%E4%B8%AD',
    );
  });

  it('parses an Authorization header whatever the order of its pairs', () => {
    const header =
      'WECHATPAY2-SHA256-RSA2048 serial_no="ABC", signature="c2ln",timestamp="1763877600",nonce_str="n1",mchid="1900000001",extra="x"';
    expect(parseAuthorization(header)).toEqual({
      mchId: '1900000001',
      serialNo: 'ABC',
      signature: 'c2ln',
      timestamp: '1763877600',
      nonce: 'n1',
    });
  });

  it.each([
    ['another scheme', 'Bearer mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x"'],
    ['a missing pair', 'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="s"'],
    [
      'an empty value',
      'WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="n",timestamp="1",serial_no="s",signature="x"',
    ],
    [
      'a repeated pair',
      'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",timestamp="1",serial_no="s",signature="x"',
    ],
    [
      'an unquoted value',
      'WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="n",timestamp="1",serial_no="s",signature="x"',
    ],
    [
      'garbage between pairs',
      'WECHATPAY2-SHA256-RSA2048 mchid="1";nonce_str="n",timestamp="1",serial_no="s",signature="x"',
    ],
  ])('refuses an Authorization header with %s', (_what, header) => {
    expect(reasonOf(() => parseAuthorization(header))).toBe('malformed_header');
  });
});

describe('WeChat Pay request verification (the sandbox side)', () => {
  const keys = new Map([[`${WX.mchid}/${WX.merchantSerial}`, merchant.publicKey]]);
  const signed = signWechatPayRequest({
    mchId: WX.mchid,
    serialNo: WX.merchantSerial,
    privateKey: merchant.privateKey,
    method: 'POST',
    url: '/v3/pay/transactions/native',
    body: NATIVE_BODY,
    now: at(FIXED_TS),
    nonce: FIXED_NONCE,
  });
  const verify = (over: Partial<Parameters<typeof verifyWechatPayRequest>[0]> = {}) =>
    verifyWechatPayRequest({
      method: 'POST',
      url: '/v3/pay/transactions/native',
      body: Buffer.from(NATIVE_BODY),
      authorization: signed.authorization,
      resolveKey: (mchId, serialNo) => keys.get(`${mchId}/${serialNo}`),
      now: at(FIXED_TS + 10),
      ...over,
    });

  it('accepts a correctly signed request, over the raw body bytes', () => {
    expect(verify()).toEqual({
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      nonce: FIXED_NONCE,
      timestamp: '1763877600',
      signature: signed.signature,
    });
  });

  it('refuses a request without Authorization', () => {
    expect(reasonOf(() => verify({ authorization: undefined }))).toBe('missing_header');
  });
  it('refuses a request signed more than 5 minutes ago', () => {
    expect(verify({ now: at(FIXED_TS + 300) }).mchId).toBe(WX.mchid);
    expect(reasonOf(() => verify({ now: at(FIXED_TS + 301) }))).toBe('stale_timestamp');
  });
  it('refuses a request stamped more than 5 minutes in the future', () => {
    expect(verify({ now: at(FIXED_TS - 300) }).mchId).toBe(WX.mchid);
    expect(reasonOf(() => verify({ now: at(FIXED_TS - 301) }))).toBe('stale_timestamp');
  });
  it('refuses an unknown merchant serial', () => {
    expect(reasonOf(() => verify({ resolveKey: () => undefined }))).toBe('unknown_serial');
  });
  it('refuses a request signed by another key', () => {
    expect(reasonOf(() => verify({ resolveKey: () => otherPlatform.publicKey }))).toBe('bad_signature');
  });
  it('refuses a body changed after signing', () => {
    expect(reasonOf(() => verify({ body: NATIVE_BODY.replace('"total":100', '"total":1') }))).toBe(
      'bad_signature',
    );
  });
  it('refuses a re-serialised body (same JSON, other bytes)', () => {
    expect(reasonOf(() => verify({ body: JSON.stringify(JSON.parse(NATIVE_BODY), null, 1) }))).toBe(
      'bad_signature',
    );
  });
  it('refuses a GET whose query was left out of the signed URL', () => {
    const url = `/v3/pay/transactions/out-trade-no/PC20251123000001?mchid=${WX.mchid}`;
    const get = signWechatPayRequest({
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      privateKey: merchant.privateKey,
      method: 'GET',
      url: url.split('?')[0] as string,
      now: at(FIXED_TS),
    });
    expect(reasonOf(() => verify({ method: 'GET', url, body: '', authorization: get.authorization }))).toBe(
      'bad_signature',
    );
    expect(
      verify({ method: 'GET', url: url.split('?')[0], body: '', authorization: get.authorization }).mchId,
    ).toBe(WX.mchid);
  });
  it('refuses a millisecond timestamp', () => {
    const ms = signed.authorization.replace('timestamp="1763877600"', 'timestamp="1763877600000"');
    expect(reasonOf(() => verify({ authorization: ms }))).toBe('malformed_header');
  });
});

describe('WeChat Pay response and callback verification', () => {
  const body = '{"code_url":"weixin://wxpay/bizpayurl?pr=SimuL8r"}';
  const nonce = 'd824f2e086d3c1df967785d13fcd22ef';
  const headers = signWechatPayResponse({
    body,
    privateKey: platform.privateKey,
    serial: WX.pubKeyId,
    now: at(FIXED_TS),
    nonce,
  });
  const verify = (over: Partial<Parameters<typeof verifyWechatPaySignature>[0]> = {}) =>
    verifyWechatPaySignature({ headers, body, platformKeys, now: at(FIXED_TS + 5), ...over });

  it('signs with the documented headers over "ts\\nnonce\\nbody\\n"', () => {
    expect(headers).toEqual({
      'Wechatpay-Timestamp': '1763877600',
      'Wechatpay-Nonce': nonce,
      'Wechatpay-Serial': WX.pubKeyId,
      'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
      'Wechatpay-Signature': expect.any(String),
    });
    expect(responseSignatureMessage(FIXED_TS, nonce, body).toString()).toBe(
      `1763877600\n${nonce}\n${body}\n`,
    );
    expect(
      rsaSha256Verify(`1763877600\n${nonce}\n${body}\n`, headers['Wechatpay-Signature'], platform.publicKey),
    ).toBe(true);
  });

  it('accepts a signed 200 response and reports the key it used', () => {
    expect(verify()).toEqual({ serial: WX.pubKeyId, timestamp: FIXED_TS, nonce });
  });

  it('accepts a signed 204 (empty body: "ts\\nnonce\\n\\n")', () => {
    const empty = signWechatPayResponse({
      body: '',
      privateKey: platform.privateKey,
      serial: WX.pubKeyId,
      now: at(FIXED_TS),
    });
    expect(verify({ headers: empty, body: '' }).serial).toBe(WX.pubKeyId);
    expect(reasonOf(() => verify({ headers: empty, body: '{}' }))).toBe('bad_signature');
  });

  it('reads Node (lower-case), fetch Headers and raw bytes alike', () => {
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(verify({ headers: lower, body: Buffer.from(body) }).serial).toBe(WX.pubKeyId);
    expect(verify({ headers: new Headers(headers), body: new TextEncoder().encode(body) }).serial).toBe(
      WX.pubKeyId,
    );
  });

  it('chooses the key by Wechatpay-Serial, with a platform certificate and a public key side by side', () => {
    const certSerial = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
    const both = platformKeyMap([
      [certSerial, otherPlatform.publicPem],
      [WX.pubKeyId, platform.publicKey],
    ]);
    const byCert = signWechatPayResponse({
      body,
      privateKey: otherPlatform.privateKey,
      serial: certSerial,
      now: at(FIXED_TS),
    });
    expect(verify({ platformKeys: both }).serial).toBe(WX.pubKeyId);
    expect(verify({ platformKeys: both, headers: byCert }).serial).toBe(certSerial);
    // The certificate's signature presented under the public key's id: the wrong key is tried, and fails.
    expect(
      reasonOf(() => verify({ platformKeys: both, headers: { ...byCert, 'Wechatpay-Serial': WX.pubKeyId } })),
    ).toBe('bad_signature');
  });

  it('refuses a stale timestamp (more than 5 minutes old)', () => {
    expect(verify({ now: at(FIXED_TS + 300) }).serial).toBe(WX.pubKeyId);
    expect(reasonOf(() => verify({ now: at(FIXED_TS + 301) }))).toBe('stale_timestamp');
  });

  it('refuses a timestamp more than 5 minutes in the future', () => {
    expect(verify({ now: at(FIXED_TS - 300) }).serial).toBe(WX.pubKeyId);
    expect(reasonOf(() => verify({ now: at(FIXED_TS - 301) }))).toBe('stale_timestamp');
  });

  it('refuses the WECHATPAY/SIGNTEST/ probe before any other check', () => {
    const probe = { ...headers, 'Wechatpay-Signature': 'WECHATPAY/SIGNTEST/OTZhNzBlYTc3YWZhNWExMmVkZjg=' };
    expect(reasonOf(() => verify({ headers: probe }))).toBe('signtest_probe');
    // Stale and unknown serial too: the probe is still what is reported, so it was refused first.
    const worse = { ...probe, 'Wechatpay-Serial': 'PUB_KEY_ID_OTHER' };
    expect(reasonOf(() => verify({ headers: worse, now: at(FIXED_TS + 9999) }))).toBe('signtest_probe');
  });

  it('refuses an unknown Wechatpay-Serial', () => {
    expect(reasonOf(() => verify({ headers: { ...headers, 'Wechatpay-Serial': 'PUB_KEY_ID_OTHER' } }))).toBe(
      'unknown_serial',
    );
  });

  it('refuses a signature by another key (the merchant key cannot stand in for the platform key)', () => {
    expect(
      reasonOf(() => verify({ platformKeys: platformKeyMap({ [WX.pubKeyId]: merchant.publicKey }) })),
    ).toBe('bad_signature');
    const forged = signWechatPayResponse({
      body,
      privateKey: otherPlatform.privateKey,
      serial: WX.pubKeyId,
      now: at(FIXED_TS),
    });
    expect(reasonOf(() => verify({ headers: forged }))).toBe('bad_signature');
  });

  it('refuses a tampered body, including re-serialised JSON', () => {
    expect(reasonOf(() => verify({ body: body.replace('SimuL8r', 'SimuL8R') }))).toBe('bad_signature');
    expect(reasonOf(() => verify({ body: JSON.stringify(JSON.parse(body), null, 2) }))).toBe('bad_signature');
  });

  it.each(['Wechatpay-Timestamp', 'Wechatpay-Nonce', 'Wechatpay-Signature', 'Wechatpay-Serial'] as const)(
    'refuses a message missing %s (absent or empty)',
    (name) => {
      const { [name]: _dropped, ...rest } = headers;
      expect(reasonOf(() => verify({ headers: rest }))).toBe('missing_header');
      expect(reasonOf(() => verify({ headers: { ...headers, [name]: '' } }))).toBe('missing_header');
      try {
        verify({ headers: rest });
      } catch (error) {
        expect((error as Error).message).toContain(name);
      }
    },
  );

  it('refuses a 2xx without any signature header', () => {
    expect(reasonOf(() => verify({ headers: { 'content-type': 'application/json' } }))).toBe(
      'missing_header',
    );
  });

  it('refuses a signature that is not base64, and a timestamp that is not 10 digits', () => {
    expect(reasonOf(() => verify({ headers: { ...headers, 'Wechatpay-Signature': 'not base64!' } }))).toBe(
      'malformed_header',
    );
    expect(reasonOf(() => verify({ headers: { ...headers, 'Wechatpay-Timestamp': `${FIXED_TS}000` } }))).toBe(
      'malformed_header',
    );
  });

  it('refuses a header given twice', () => {
    const twice = { ...headers, 'wechatpay-serial': WX.pubKeyId };
    expect(reasonOf(() => verify({ headers: twice }))).toBe('malformed_header');
  });
});

describe('WeChat Pay AEAD_AES_256_GCM resources', () => {
  const plaintext = JSON.stringify(A4_TRANSACTION);
  const apiV3Key = loadApiV3Key(WX.apiV3Key);
  const resource = encryptWechatPayResource({ plaintext, apiV3Key, associatedData: 'transaction' });
  const flip = (b64: string, index: number) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[index] = (bytes[index] as number) ^ 0x01;
    return bytes.toString('base64');
  };

  it('round-trips with a fresh 12-character nonce, and with empty associated data', () => {
    expect(resource.nonce).toMatch(/^[0-9A-Za-z]{12}$/);
    expect(resource.original_type).toBe('transaction');
    expect(decryptWechatPayResource(resource, apiV3Key)).toBe(plaintext);
    const noAad = encryptWechatPayResource({ plaintext, apiV3Key, associatedData: '' });
    const { associated_data: _none, ...withoutField } = noAad;
    expect(decryptWechatPayResource(withoutField, apiV3Key)).toBe(plaintext);
  });

  it('refuses a tampered ciphertext', () => {
    expect(
      reasonOf(() =>
        decryptWechatPayResource({ ...resource, ciphertext: flip(resource.ciphertext, 3) }, apiV3Key),
      ),
    ).toBe('decrypt_failed');
  });

  it('refuses a tampered tag', () => {
    const last = Buffer.from(resource.ciphertext, 'base64').length - 1;
    expect(
      reasonOf(() =>
        decryptWechatPayResource({ ...resource, ciphertext: flip(resource.ciphertext, last) }, apiV3Key),
      ),
    ).toBe('decrypt_failed');
  });

  it('refuses the wrong APIv3 key', () => {
    expect(reasonOf(() => decryptWechatPayResource(resource, 'X'.repeat(32)))).toBe('decrypt_failed');
  });

  it('refuses other associated data or another nonce', () => {
    expect(
      reasonOf(() => decryptWechatPayResource({ ...resource, associated_data: 'refund' }, apiV3Key)),
    ).toBe('decrypt_failed');
    expect(reasonOf(() => decryptWechatPayResource({ ...resource, nonce: 'AAAAAAAAAAAA' }, apiV3Key))).toBe(
      'decrypt_failed',
    );
  });

  it('refuses another algorithm and a ciphertext shorter than its tag', () => {
    expect(
      reasonOf(() => decryptWechatPayResource({ ...resource, algorithm: 'AEAD_SM4_GCM' }, apiV3Key)),
    ).toBe('unsupported_algorithm');
    expect(reasonOf(() => decryptWechatPayResource({ ...resource, ciphertext: 'AAAA' }, apiV3Key))).toBe(
      'malformed_resource',
    );
  });

  it('insists on a 32-byte APIv3 key', () => {
    expect(() => loadApiV3Key('short')).toThrow(/32 bytes/);
    expect(() => loadApiV3Key('密'.repeat(32))).toThrow(/32 bytes/);
  });
});

describe('WeChat Pay callbacks, end to end', () => {
  const apiV3Key = loadApiV3Key(WX.apiV3Key);
  function callback(resource: WechatPayEncryptedResource, sign = platform) {
    const body = JSON.stringify({
      id: 'EV-2025112314050600001',
      create_time: '2025-11-23T14:05:07+08:00',
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource,
    });
    const headers = signWechatPayResponse({
      body,
      privateKey: sign.privateKey,
      serial: WX.pubKeyId,
      now: at(FIXED_TS),
    });
    return { body, headers };
  }
  const good = encryptWechatPayResource({
    plaintext: JSON.stringify(A4_TRANSACTION),
    apiV3Key,
    associatedData: 'transaction',
  });

  it('verifies the raw body, reads the envelope and decrypts the resource', () => {
    const { body, headers } = callback(good);
    const opened = openWechatPayCallback({ headers, body, platformKeys, apiV3Key, now: at(FIXED_TS + 2) });
    expect(opened.envelope.event_type).toBe('TRANSACTION.SUCCESS');
    expect(opened.resource).toEqual(A4_TRANSACTION);
    expect(opened.verified.serial).toBe(WX.pubKeyId);
  });

  it('refuses a callback signed by another key before decrypting anything', () => {
    const { body, headers } = callback(good, otherPlatform);
    expect(
      reasonOf(() => openWechatPayCallback({ headers, body, platformKeys, apiV3Key, now: at(FIXED_TS) })),
    ).toBe('bad_signature');
  });

  it('refuses a validly signed callback whose ciphertext was tampered with', () => {
    const bytes = Buffer.from(good.ciphertext, 'base64');
    bytes[0] = (bytes[0] as number) ^ 0x80;
    const { body, headers } = callback({ ...good, ciphertext: bytes.toString('base64') });
    expect(
      reasonOf(() => openWechatPayCallback({ headers, body, platformKeys, apiV3Key, now: at(FIXED_TS) })),
    ).toBe('decrypt_failed');
  });

  it('refuses a resource encrypted with another APIv3 key', () => {
    const other = encryptWechatPayResource({
      plaintext: '{}',
      apiV3Key: 'Y'.repeat(32),
      associatedData: 'transaction',
    });
    const { body, headers } = callback(other);
    expect(
      reasonOf(() => openWechatPayCallback({ headers, body, platformKeys, apiV3Key, now: at(FIXED_TS) })),
    ).toBe('decrypt_failed');
  });

  it('refuses a signed body that is not the documented envelope', () => {
    for (const body of [
      'not json',
      '[]',
      '{"id":"x"}',
      '{"id":"x","create_time":"t","event_type":"e","resource_type":"r","resource":{"algorithm":"AEAD_AES_256_GCM"}}',
    ]) {
      const headers = signWechatPayResponse({
        body,
        privateKey: platform.privateKey,
        serial: WX.pubKeyId,
        now: at(FIXED_TS),
      });
      expect(() =>
        openWechatPayCallback({ headers, body, platformKeys, apiV3Key, now: at(FIXED_TS) }),
      ).toThrow(WechatPayFormatError);
    }
    expect(() => parseWechatPayCallbackEnvelope('{"id":1}')).toThrow(/lacks id/);
  });
});

describe('WeChat Pay client invoke parameters', () => {
  const prepayId = 'wx23140506000000000000000000000000';
  const nonce = 'e61463f8efa94090b1f366cccfbbb444';

  it('JSAPI / mini-program: the full parameter set, paySign over appId, timeStamp, nonceStr and package', () => {
    const params = wechatPayJsapiParams({
      appId: WX.appid,
      prepayId,
      privateKey: merchant.privateKey,
      now: at(FIXED_TS),
      nonce,
    });
    expect(params).toEqual({
      appId: WX.appid,
      timeStamp: '1763877600',
      nonceStr: nonce,
      package: `prepay_id=${prepayId}`,
      signType: 'RSA',
      paySign: expect.any(String),
    });
    expect(
      rsaSha256Verify(
        `${WX.appid}\n1763877600\n${nonce}\nprepay_id=${prepayId}\n`,
        params.paySign,
        merchant.publicKey,
      ),
    ).toBe(true);
  });

  it('APP: the OpenSDK parameter set, sign over the bare prepay_id', () => {
    const params = wechatPayAppParams({
      appId: WX.appid,
      mchId: WX.mchid,
      prepayId,
      privateKey: merchant.privateKey,
      now: at(FIXED_TS),
      nonce,
    });
    expect(params).toEqual({
      appid: WX.appid,
      partnerid: WX.mchid,
      prepayid: prepayId,
      package: 'Sign=WXPay',
      noncestr: nonce,
      timestamp: '1763877600',
      sign: expect.any(String),
    });
    expect(
      rsaSha256Verify(`${WX.appid}\n1763877600\n${nonce}\n${prepayId}\n`, params.sign, merchant.publicKey),
    ).toBe(true);
    expect(
      rsaSha256Verify(
        `${WX.appid}\n1763877600\n${nonce}\nprepay_id=${prepayId}\n`,
        params.sign,
        merchant.publicKey,
      ),
    ).toBe(false);
  });
});

describe('WeChat Pay times (RFC 3339, +08:00)', () => {
  it('formats in +08:00 whatever the machine zone, dropping milliseconds', () => {
    expect(formatWechatPayTime(new Date('2025-11-23T06:05:06.999Z'))).toBe('2025-11-23T14:05:06+08:00');
    expect(formatWechatPayTime(new Date('2025-12-31T16:00:00Z'))).toBe('2026-01-01T00:00:00+08:00');
  });

  it.each([
    ['2025-11-23T14:05:06+08:00', '2025-11-23T06:05:06.000Z'],
    ['2025-11-23T06:05:06Z', '2025-11-23T06:05:06.000Z'],
    ['2025-11-23t06:05:06.123456z', '2025-11-23T06:05:06.123Z'],
    ['2025-11-23T01:05:06-05:00', '2025-11-23T06:05:06.000Z'],
    ['2024-02-29T00:00:00+08:00', '2024-02-28T16:00:00.000Z'],
  ])('parses %s', (text, iso) => {
    expect(parseWechatPayTime(text).toISOString()).toBe(iso);
  });

  it.each([
    '2025-11-23 14:05:06+08:00',
    '2025-11-23T14:05:06',
    '2025-02-29T00:00:00+08:00',
    '2025-11-23T24:00:00+08:00',
    '2025-11-23T14:05:60+08:00',
    '2025-13-01T00:00:00Z',
    '1763877600',
    '',
  ])('refuses %j', (text) => {
    expect(() => parseWechatPayTime(text)).toThrow(WechatPayFormatError);
  });

  it('round-trips', () => {
    const d = new Date('2030-06-01T12:34:56Z');
    expect(parseWechatPayTime(formatWechatPayTime(d)).getTime()).toBe(d.getTime());
  });
});

describe('WeChat Pay keys', () => {
  it('parses PEM once into KeyObjects and refuses non-RSA keys', () => {
    expect(loadRsaPublicKey(platform.publicPem).asymmetricKeyType).toBe('rsa');
    expect(loadRsaPublicKey(platform.privateKey).type).toBe('public');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => loadRsaPublicKey(ec)).toThrow(/RSA/);
  });
});
