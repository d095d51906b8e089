import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { WechatPaySignatureError } from './errors.js';
import { loadApiV3Key } from './keys.js';
import { isBase64, randomNonce } from './rsa.js';

/**
 * AEAD_AES_256_GCM as WeChat Pay v3 uses it for callback resources (and `/v3/certificates`):
 * key = the APIv3 key's 32 UTF-8 bytes, IV = `nonce` as UTF-8, AAD = `associated_data` as UTF-8 (may be
 * empty), and `ciphertext` = base64(encrypted bytes ‖ 16-byte tag). The tag is always checked.
 */

export const WECHATPAY_AEAD_ALGORITHM = 'AEAD_AES_256_GCM';
const TAG_BYTES = 16;

/** A callback `resource` object, as it appears in the envelope. */
export interface WechatPayEncryptedResource {
  algorithm: string;
  ciphertext: string;
  associated_data?: string;
  nonce: string;
  original_type?: string;
}

function gcmName(key: KeyObject): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
  switch (key.symmetricKeySize) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      throw new TypeError('an AES-GCM key must be 16, 24 or 32 bytes');
  }
}

/**
 * AES-GCM encryption in WeChat's layout: base64(ciphertext ‖ tag). The cipher follows the key size;
 * {@link encryptWechatPayResource} insists on 32 bytes.
 */
export function aesGcmSeal(key: KeyObject, nonce: string, associatedData: string, plaintext: string): string {
  const cipher = createCipheriv(gcmName(key), key, Buffer.from(nonce, 'utf8'), { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64',
  );
}

/** The inverse of {@link aesGcmSeal}. Any authentication failure is a `decrypt_failed` error. */
export function aesGcmOpen(
  key: KeyObject,
  nonce: string,
  associatedData: string,
  ciphertext: string,
): string {
  if (!isBase64(ciphertext)) {
    throw new WechatPaySignatureError('malformed_resource', 'the ciphertext is not base64');
  }
  const bytes = Buffer.from(ciphertext, 'base64');
  if (bytes.length < TAG_BYTES) {
    throw new WechatPaySignatureError('malformed_resource', 'the ciphertext is shorter than its tag');
  }
  if (nonce === '') throw new WechatPaySignatureError('malformed_resource', 'the nonce is empty');
  const decipher = createDecipheriv(gcmName(key), key, Buffer.from(nonce, 'utf8'), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw new WechatPaySignatureError(
      'decrypt_failed',
      'the resource does not authenticate (wrong APIv3 key or tampered data)',
      { cause },
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new WechatPaySignatureError('malformed_resource', 'the decrypted resource is not UTF-8');
  }
}

/** Decrypts a callback resource with the APIv3 key; returns the plaintext (JSON text). */
export function decryptWechatPayResource(
  resource: WechatPayEncryptedResource,
  apiV3Key: KeyObject | string,
): string {
  if (resource.algorithm !== WECHATPAY_AEAD_ALGORITHM) {
    throw new WechatPaySignatureError(
      'unsupported_algorithm',
      `resource algorithm ${String(resource.algorithm)} is not ${WECHATPAY_AEAD_ALGORITHM}`,
    );
  }
  if (typeof resource.ciphertext !== 'string' || typeof resource.nonce !== 'string') {
    throw new WechatPaySignatureError('malformed_resource', 'the resource lacks ciphertext or nonce');
  }
  const aad = resource.associated_data ?? '';
  if (typeof aad !== 'string')
    throw new WechatPaySignatureError('malformed_resource', 'associated_data is not a string');
  return aesGcmOpen(loadApiV3Key(apiV3Key), resource.nonce, aad, resource.ciphertext);
}

export interface EncryptResourceInput {
  plaintext: string;
  apiV3Key: KeyObject | string;
  /** 12 characters; random when omitted. */
  nonce?: string;
  /** `transaction` or `refund` in real traffic; `''` in the docs' examples. */
  associatedData: string;
  originalType?: string;
}

/** Encrypts a resource as WeChat Pay does for callbacks (the sandbox's side). */
export function encryptWechatPayResource(input: EncryptResourceInput): Required<WechatPayEncryptedResource> {
  const nonce = input.nonce ?? randomNonce(12);
  return {
    original_type: input.originalType ?? input.associatedData,
    algorithm: WECHATPAY_AEAD_ALGORITHM,
    ciphertext: aesGcmSeal(loadApiV3Key(input.apiV3Key), nonce, input.associatedData, input.plaintext),
    associated_data: input.associatedData,
    nonce,
  };
}
