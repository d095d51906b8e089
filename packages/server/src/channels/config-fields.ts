import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { invalidRequest } from '../errors.js';
import { checkHttpUrl } from '../validation.js';

/**
 * Field readers for channel credential objects. Each names the offending field as `config.<name>`,
 * so an operator pasting credentials learns exactly which one is wrong.
 */
export type RawConfig = Record<string, unknown>;

export function rejectUnknownFields(config: RawConfig, known: readonly string[]): void {
  for (const key of Object.keys(config)) {
    if (!known.includes(key))
      throw invalidRequest(`config.${key}`, `unknown field (expected one of ${known.join(', ')})`);
  }
}

export function requiredString(config: RawConfig, name: string, pattern?: RegExp, rule?: string): string {
  const value = config[name];
  if (value === undefined || value === null || value === '')
    throw invalidRequest(`config.${name}`, 'is required');
  if (typeof value !== 'string') throw invalidRequest(`config.${name}`, 'must be a string');
  const trimmed = value.trim();
  if (pattern && !pattern.test(trimmed))
    throw invalidRequest(`config.${name}`, rule ?? 'has an invalid format');
  return trimmed;
}

export function optionalUrl(config: RawConfig, name: string, fallback: string): string {
  const value = config[name];
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string') throw invalidRequest(`config.${name}`, 'must be a string');
  return checkHttpUrl(`config.${name}`, value.trim());
}

/** Accepts a PEM block, or bare base64 DER as Alipay's console hands it out. */
function toPem(value: string, kind: 'PRIVATE KEY' | 'PUBLIC KEY'): string {
  if (value.includes('-----BEGIN')) return value;
  const body = value.replace(/\s+/g, '');
  return `-----BEGIN ${kind}-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END ${kind}-----\n`;
}

function rsaKey(name: string, parse: () => KeyObject, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = parse();
  } catch {
    throw invalidRequest(`config.${name}`, `is not a valid ${what} (PEM)`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw invalidRequest(`config.${name}`, `must be an RSA ${what}`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048)
    throw invalidRequest(`config.${name}`, `must be an RSA key of at least 2048 bits (got ${bits})`);
  return key;
}

/** Returns the key re-encoded as PKCS#8 PEM, so every stored private key has one form. */
export function rsaPrivateKeyPem(config: RawConfig, name: string): string {
  const raw = requiredString(config, name);
  const key = rsaKey(name, () => createPrivateKey(toPem(raw, 'PRIVATE KEY')), 'private key');
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Returns the key re-encoded as SPKI PEM. A certificate or private key is refused: we need the public key. */
export function rsaPublicKeyPem(config: RawConfig, name: string): string {
  const raw = requiredString(config, name);
  if (raw.includes('PRIVATE KEY'))
    throw invalidRequest(`config.${name}`, 'must be a public key, not a private key');
  const key = rsaKey(name, () => createPublicKey(toPem(raw, 'PUBLIC KEY')), 'public key');
  return key.export({ format: 'pem', type: 'spki' }).toString();
}
