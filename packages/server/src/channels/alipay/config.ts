import { invalidRequest } from '../../errors.js';
import {
  optionalUrl,
  type RawConfig,
  rejectUnknownFields,
  requiredString,
  rsaPrivateKeyPem,
  rsaPublicKeyPem,
} from '../config-fields.js';

/** Credentials of one Alipay OpenAPI application (public-key mode, RSA2). */
export interface AlipayConfig {
  appId: string;
  privateKey: string;
  alipayPublicKey: string;
  gateway: string;
  signType: 'RSA2';
}

export const ALIPAY_DEFAULT_GATEWAY = 'https://openapi.alipay.com/gateway.do';

const FIELDS = ['appId', 'privateKey', 'alipayPublicKey', 'gateway', 'signType'] as const;

export function parseAlipayConfig(config: RawConfig): AlipayConfig {
  rejectUnknownFields(config, FIELDS);
  const signType = config.signType ?? 'RSA2';
  if (signType !== 'RSA2') throw invalidRequest('config.signType', 'must be RSA2 (RSA with SHA-256)');
  return {
    appId: requiredString(config, 'appId', /^\d{8,32}$/, 'must be the Alipay APPID (digits)'),
    privateKey: rsaPrivateKeyPem(config, 'privateKey'),
    alipayPublicKey: rsaPublicKeyPem(config, 'alipayPublicKey'),
    gateway: optionalUrl(config, 'gateway', ALIPAY_DEFAULT_GATEWAY),
    signType: 'RSA2',
  };
}
