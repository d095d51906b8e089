import type { KeyObject } from 'node:crypto';
import { isObject } from '../client-support.js';
import { decryptWechatPayResource, type WechatPayEncryptedResource } from './aead.js';
import { WechatPayFormatError } from './errors.js';
import {
  type VerifiedWechatPayMessage,
  type VerifyResponseInput,
  verifyWechatPaySignature,
  type WireBody,
} from './signature.js';

/** The JSON envelope of a WeChat Pay v3 callback (research §A.4). Unknown fields are kept, not refused. */
export interface WechatPayCallbackEnvelope {
  id: string;
  create_time: string;
  event_type: string;
  resource_type: string;
  summary?: string;
  resource: WechatPayEncryptedResource;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new WechatPayFormatError('malformed_body', `${what} is not JSON`);
  }
}

/** Reads the envelope of a callback body (after its signature has been verified). */
export function parseWechatPayCallbackEnvelope(body: WireBody): WechatPayCallbackEnvelope {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const envelope = parseJson(text, 'the callback body');
  if (!isObject(envelope))
    throw new WechatPayFormatError('malformed_body', 'the callback body is not an object');
  for (const field of ['id', 'create_time', 'event_type', 'resource_type'] as const) {
    if (typeof envelope[field] !== 'string') {
      throw new WechatPayFormatError('malformed_body', `the callback body lacks ${field}`);
    }
  }
  const resource = envelope.resource;
  if (!isObject(resource))
    throw new WechatPayFormatError('malformed_body', 'the callback body lacks resource');
  for (const field of ['algorithm', 'ciphertext', 'nonce'] as const) {
    if (typeof resource[field] !== 'string') {
      throw new WechatPayFormatError('malformed_body', `the callback resource lacks ${field}`);
    }
  }
  if (resource.associated_data !== undefined && typeof resource.associated_data !== 'string') {
    throw new WechatPayFormatError('malformed_body', 'resource.associated_data is not a string');
  }
  return envelope as unknown as WechatPayCallbackEnvelope;
}

export interface OpenCallbackInput extends VerifyResponseInput {
  apiV3Key: KeyObject;
}

export interface OpenedWechatPayCallback {
  verified: VerifiedWechatPayMessage;
  envelope: WechatPayCallbackEnvelope;
  /** The decrypted resource as JSON text, and parsed. What it holds is the caller's business. */
  plaintext: string;
  resource: Record<string, unknown>;
}

/**
 * The whole inbound path of a callback: verify the signature over the raw body, read the envelope,
 * decrypt the resource (tag checked) and parse it. Throws `WechatPaySignatureError` or
 * `WechatPayFormatError`; on success the resource is authentic.
 */
export function openWechatPayCallback(input: OpenCallbackInput): OpenedWechatPayCallback {
  const verified = verifyWechatPaySignature(input);
  const envelope = parseWechatPayCallbackEnvelope(input.body);
  const plaintext = decryptWechatPayResource(envelope.resource, input.apiV3Key);
  const resource = parseJson(plaintext, 'the decrypted resource');
  if (!isObject(resource))
    throw new WechatPayFormatError('malformed_body', 'the decrypted resource is not an object');
  return { verified, envelope, plaintext, resource };
}
