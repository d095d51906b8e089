import { invalidRequest } from '../../errors.js';
import {
  optionalUrl,
  type RawConfig,
  rejectUnknownFields,
  requiredString,
  rsaPrivateKeyPem,
  rsaPublicKeyPem,
} from '../config-fields.js';

/** Credentials of one WeChat Pay API v3 merchant (public-key mode). */
export interface WechatPayConfig {
  mchId: string;
  appId: string;
  /** The APIv3 key: 32 bytes, used as the AES-256-GCM key for callback resources. */
  apiV3Key: string;
  merchantSerialNo: string;
  merchantPrivateKey: string;
  platformPublicKey: string;
  platformPublicKeyId: string;
  baseUrl: string;
}

export const WECHATPAY_DEFAULT_BASE_URL = 'https://api.mch.weixin.qq.com';

const FIELDS = [
  'mchId',
  'appId',
  'apiV3Key',
  'merchantSerialNo',
  'merchantPrivateKey',
  'platformPublicKey',
  'platformPublicKeyId',
  'baseUrl',
] as const;

export function parseWechatPayConfig(config: RawConfig): WechatPayConfig {
  rejectUnknownFields(config, FIELDS);
  const apiV3Key = requiredString(config, 'apiV3Key');
  if (Buffer.byteLength(apiV3Key, 'utf8') !== 32) {
    throw invalidRequest(
      'config.apiV3Key',
      'must be exactly 32 characters (the APIv3 key set in the merchant console)',
    );
  }
  return {
    mchId: requiredString(config, 'mchId', /^\d{6,32}$/, 'must be the merchant id (digits)'),
    appId: requiredString(
      config,
      'appId',
      /^[A-Za-z0-9_]{1,32}$/,
      'must be the AppID bound to the merchant (wx…)',
    ),
    apiV3Key,
    merchantSerialNo: requiredString(
      config,
      'merchantSerialNo',
      /^[0-9A-Fa-f]{8,64}$/,
      "must be the merchant certificate's serial number (hex)",
    ).toUpperCase(),
    merchantPrivateKey: rsaPrivateKeyPem(config, 'merchantPrivateKey'),
    platformPublicKey: rsaPublicKeyPem(config, 'platformPublicKey'),
    platformPublicKeyId: requiredString(
      config,
      'platformPublicKeyId',
      /^[A-Za-z0-9_]{1,64}$/,
      'must be the WeChat Pay public key id (PUB_KEY_ID_…)',
    ),
    baseUrl: optionalUrl(config, 'baseUrl', WECHATPAY_DEFAULT_BASE_URL).replace(/\/+$/, ''),
  };
}
