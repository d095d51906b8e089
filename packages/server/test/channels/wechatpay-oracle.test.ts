import { describe, expect, it } from 'vitest';
import { Aes, Decorator, Formatter, Rsa, Wechatpay } from 'wechatpay-axios-plugin';
import { decryptWechatPayResource, encryptWechatPayResource } from '../../src/channels/wechatpay/aead.js';
import { WechatPaySignatureError } from '../../src/channels/wechatpay/errors.js';
import { platformKeyMap } from '../../src/channels/wechatpay/keys.js';
import {
  parseAuthorization,
  requestSignatureMessage,
  signWechatPayRequest,
  signWechatPayResponse,
  verifyWechatPayRequest,
  verifyWechatPaySignature,
} from '../../src/channels/wechatpay/signature.js';
import { newRsaPair } from './fixtures/keys.js';
import {
  A4_AAD,
  A4_NONCE,
  A4_TRANSACTION,
  FIXED_NONCE,
  FIXED_TS,
  NATIVE_BODY,
  WX,
} from './fixtures/vectors.js';

/**
 * Cross-checks against an independent implementation, wechatpay-axios-plugin (research §C.2): a
 * mistake shared by our client and our sandbox would pass every other test and fail in production.
 */

const merchant = newRsaPair();
const platform = newRsaPair();
const other = newRsaPair();

/** The plugin's response verifier, as its axios client runs it (`this` is the request config). */
function pluginVerifies(
  body: string,
  headers: Record<string, string>,
  certs: Record<string, unknown>,
): boolean {
  const verifier = Decorator.responseVerifier(certs as never) as (
    this: { url: string },
    data: string,
    headers: Record<string, string>,
    status: number,
  ) => unknown;
  return verifier.call({ url: 'v3/pay/transactions/native' }, body, headers, 200) === body;
}

describe('our WeChat Pay signatures against wechatpay-axios-plugin', () => {
  it('builds the same request message and a byte-identical signature', () => {
    const signed = signWechatPayRequest({
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      privateKey: merchant.privateKey,
      method: 'POST',
      url: '/v3/pay/transactions/native',
      body: NATIVE_BODY,
      now: new Date(FIXED_TS * 1000),
      nonce: FIXED_NONCE,
    });
    const theirMessage = Formatter.request(
      'POST',
      '/v3/pay/transactions/native',
      FIXED_TS,
      FIXED_NONCE,
      NATIVE_BODY,
    );
    expect(
      requestSignatureMessage(
        'POST',
        '/v3/pay/transactions/native',
        FIXED_TS,
        FIXED_NONCE,
        NATIVE_BODY,
      ).toString(),
    ).toBe(theirMessage);
    expect(Rsa.sign(theirMessage, Rsa.from(merchant.privatePem, Rsa.KEY_TYPE_PRIVATE))).toBe(
      signed.signature,
    );
    expect(
      Rsa.verify(theirMessage, signed.signature, Rsa.from(merchant.publicPem, Rsa.KEY_TYPE_PUBLIC)),
    ).toBe(true);
  });

  it('the plugin verifies our signature over a GET with a query, and rejects it for another URL', () => {
    const url = `/v3/pay/transactions/out-trade-no/PC20251123000001?mchid=${WX.mchid}`;
    const signed = signWechatPayRequest({
      mchId: WX.mchid,
      serialNo: WX.merchantSerial,
      privateKey: merchant.privateKey,
      method: 'GET',
      url,
      now: new Date(FIXED_TS * 1000),
    });
    const key = Rsa.from(merchant.publicPem, Rsa.KEY_TYPE_PUBLIC);
    expect(
      Rsa.verify(Formatter.request('GET', url, signed.timestamp, signed.nonce, ''), signed.signature, key),
    ).toBe(true);
    expect(
      Rsa.verify(
        Formatter.request('GET', url.split('?')[0] as string, signed.timestamp, signed.nonce, ''),
        signed.signature,
        key,
      ),
    ).toBe(false);
  });

  it("we read the plugin's Authorization header (its pairs in another order) and verify its signature", () => {
    const message = Formatter.request(
      'POST',
      '/v3/pay/transactions/native',
      FIXED_TS,
      FIXED_NONCE,
      NATIVE_BODY,
    );
    const signature = Rsa.sign(message, Rsa.from(merchant.privatePem, Rsa.KEY_TYPE_PRIVATE));
    const header = Formatter.authorization(WX.mchid, FIXED_NONCE, signature, FIXED_TS, WX.merchantSerial);
    expect(parseAuthorization(header)).toEqual({
      mchId: WX.mchid,
      nonce: FIXED_NONCE,
      timestamp: String(FIXED_TS),
      serialNo: WX.merchantSerial,
      signature,
    });
    const verified = verifyWechatPayRequest({
      method: 'POST',
      url: '/v3/pay/transactions/native',
      body: NATIVE_BODY,
      authorization: header,
      resolveKey: () => merchant.publicKey,
      now: new Date(FIXED_TS * 1000),
    });
    expect(verified.signature).toBe(signature);
  });

  it("the plugin's response verifier accepts our signed responses and refuses them when tampered or by another key", () => {
    const body = '{"code_url":"weixin://wxpay/bizpayurl?pr=SimuL8r"}';
    const certs = { [WX.pubKeyId]: Rsa.from(platform.publicPem, Rsa.KEY_TYPE_PUBLIC) };
    const headers = {
      ...signWechatPayResponse({
        body,
        privateKey: platform.privateKey,
        serial: WX.pubKeyId,
        now: new Date(),
      }),
    };
    expect(pluginVerifies(body, headers, certs)).toBe(true);
    expect(pluginVerifies(body.replace('SimuL8r', 'x'), headers, certs)).toBe(false);
    const forged = {
      ...signWechatPayResponse({ body, privateKey: other.privateKey, serial: WX.pubKeyId, now: new Date() }),
    };
    expect(pluginVerifies(body, forged, certs)).toBe(false);
    const empty = {
      ...signWechatPayResponse({
        body: '',
        privateKey: platform.privateKey,
        serial: WX.pubKeyId,
        now: new Date(),
      }),
    };
    expect(pluginVerifies('', empty, certs)).toBe(true);
  });

  it("we verify responses signed the plugin's way (Formatter.response + Rsa.sign)", () => {
    const body = '{"prepay_id":"wx23140506000000000000000000000000"}';
    const nonce = Formatter.nonce();
    const signature = Rsa.sign(
      Formatter.response(FIXED_TS, nonce, body),
      Rsa.from(platform.privatePem, Rsa.KEY_TYPE_PRIVATE),
    );
    const headers = {
      'wechatpay-timestamp': String(FIXED_TS),
      'wechatpay-nonce': nonce,
      'wechatpay-signature': signature,
      'wechatpay-serial': WX.pubKeyId,
    };
    const platformKeys = platformKeyMap({ [WX.pubKeyId]: platform.publicPem });
    const now = new Date(FIXED_TS * 1000);
    expect(verifyWechatPaySignature({ headers, body, platformKeys, now }).nonce).toBe(nonce);
    expect(() => verifyWechatPaySignature({ headers, body: `${body} `, platformKeys, now })).toThrow(
      WechatPaySignatureError,
    );
  });

  it('a full plugin client call: our sandbox-side verifier accepts its request, the plugin accepts our response', async () => {
    const seen: { url?: string; verified?: boolean } = {};
    const answer = '{"code_url":"weixin://wxpay/bizpayurl?pr=SimuL8r"}';
    const adapter = async (config: {
      url?: string;
      baseURL?: string;
      method?: string;
      data?: unknown;
      headers: { get?: (name: string) => unknown; Authorization?: unknown };
    }) => {
      const sent = new URL(config.url ?? '', config.baseURL);
      seen.url = `${sent.pathname}${sent.search}`;
      const authorization = String(config.headers.get?.('Authorization') ?? config.headers.Authorization);
      const now = new Date();
      const auth = verifyWechatPayRequest({
        method: String(config.method).toUpperCase(),
        url: seen.url,
        body: typeof config.data === 'string' ? config.data : '',
        authorization,
        resolveKey: (mchId, serialNo) =>
          mchId === WX.mchid && serialNo === WX.merchantSerial ? merchant.publicKey : undefined,
        now,
      });
      seen.verified = auth.mchId === WX.mchid;
      const headers = {
        ...signWechatPayResponse({ body: answer, privateKey: platform.privateKey, serial: WX.pubKeyId, now }),
      };
      return { data: answer, status: 200, statusText: 'OK', headers, config, request: {} };
    };
    const wxpay = new Wechatpay({
      mchid: WX.mchid,
      serial: WX.merchantSerial,
      privateKey: merchant.privatePem,
      certs: { [WX.pubKeyId]: platform.publicPem },
      baseURL: 'http://sandbox.invalid/__sandbox/wechatpay/',
      adapter: adapter as never,
    });
    const response = (await wxpay.chain('v3/pay/transactions/native').post(JSON.parse(NATIVE_BODY))) as {
      data: { code_url: string };
    };
    expect(seen).toEqual({ url: '/__sandbox/wechatpay/v3/pay/transactions/native', verified: true });
    expect(response.data.code_url).toBe('weixin://wxpay/bizpayurl?pr=SimuL8r');
  });
});

describe('our AEAD_AES_256_GCM against wechatpay-axios-plugin', () => {
  const plaintext = JSON.stringify(A4_TRANSACTION);

  it('produces byte-identical ciphertexts for the same key, nonce and associated data', () => {
    const ours = encryptWechatPayResource({
      plaintext,
      apiV3Key: WX.apiV3Key,
      nonce: A4_NONCE,
      associatedData: A4_AAD,
    });
    expect(Aes.AesGcm.encrypt(plaintext, WX.apiV3Key, A4_NONCE, A4_AAD)).toBe(ours.ciphertext);
  });

  it('the plugin decrypts our ciphertexts', () => {
    const ours = encryptWechatPayResource({ plaintext, apiV3Key: WX.apiV3Key, associatedData: 'refund' });
    expect(Aes.AesGcm.decrypt(ours.ciphertext, WX.apiV3Key, ours.nonce, 'refund')).toBe(plaintext);
  });

  it("we decrypt the plugin's ciphertexts, and refuse them with the wrong key or tampered", () => {
    const nonce = Formatter.nonce(12);
    const theirs = Aes.AesGcm.encrypt(plaintext, WX.apiV3Key, nonce, 'transaction');
    const resource = {
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: theirs,
      associated_data: 'transaction',
      nonce,
    };
    expect(decryptWechatPayResource(resource, WX.apiV3Key)).toBe(plaintext);
    expect(() => decryptWechatPayResource(resource, 'Z'.repeat(32))).toThrow(/authenticate/);
    const bytes = Buffer.from(theirs, 'base64');
    bytes[5] = (bytes[5] as number) ^ 0x10;
    expect(() =>
      decryptWechatPayResource({ ...resource, ciphertext: bytes.toString('base64') }, WX.apiV3Key),
    ).toThrow(/authenticate/);
  });
});
