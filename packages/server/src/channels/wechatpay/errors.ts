/**
 * Why a message from (or to) WeChat Pay was refused. Stable codes: safe to log, never carry secrets.
 *
 * - `missing_header`: a `Wechatpay-*` header (or `Authorization`) is absent or empty.
 * - `malformed_header`: present but unreadable (not 10-digit seconds, a repeated header, a broken
 *   `Authorization`, a signature that is not base64).
 * - `stale_timestamp`: more than 5 minutes away from our clock, in either direction.
 * - `signtest_probe`: a `WECHATPAY/SIGNTEST/…` probe; refused before any crypto, as WeChat expects.
 * - `unknown_serial`: no key for the `Wechatpay-Serial` (or `serial_no`) given.
 * - `bad_signature`: the RSA signature does not match (other key, tampered body, other message).
 * - `unsupported_algorithm`: a callback resource that is not `AEAD_AES_256_GCM`.
 * - `malformed_resource`: a callback resource missing fields or with a ciphertext shorter than the tag.
 * - `decrypt_failed`: the GCM tag does not verify (wrong APIv3 key, tampered ciphertext/nonce/AAD).
 */
export type WechatPaySignatureReason =
  | 'missing_header'
  | 'malformed_header'
  | 'stale_timestamp'
  | 'signtest_probe'
  | 'unknown_serial'
  | 'bad_signature'
  | 'unsupported_algorithm'
  | 'malformed_resource'
  | 'decrypt_failed';

/** A refused signature or ciphertext. `reason` is the stable code; the message adds non-secret detail. */
export class WechatPaySignatureError extends Error {
  readonly provider = 'wechatpay';
  readonly reason: WechatPaySignatureReason;

  constructor(reason: WechatPaySignatureReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WechatPaySignatureError';
    this.reason = reason;
  }
}

/**
 * A value in WeChat Pay's wire format that cannot be read: `invalid_time` (not RFC 3339),
 * `malformed_body` (a callback body that is not the documented JSON envelope).
 */
export type WechatPayFormatReason = 'invalid_time' | 'malformed_body';

export class WechatPayFormatError extends Error {
  readonly provider = 'wechatpay';
  readonly reason: WechatPayFormatReason;

  constructor(reason: WechatPayFormatReason, message: string) {
    super(message);
    this.name = 'WechatPayFormatError';
    this.reason = reason;
  }
}
