/**
 * Why a message from (or to) Alipay was refused. Stable codes: safe to log, never carry secrets.
 *
 * - `missing_sign`: no `sign` (a notify, a gateway response, or a request to the sandbox).
 * - `unsupported_sign_type`: `sign_type` is present and is not `RSA2` (SHA1 `RSA` is not accepted).
 * - `malformed_notify`: a notify field given more than once, or not a string.
 * - `malformed_response`: a gateway response that is not a JSON object holding the expected node.
 * - `bad_signature`: the RSA2 signature does not match (other key, tampered field or body).
 */
export type AlipaySignatureReason =
  | 'missing_sign'
  | 'unsupported_sign_type'
  | 'malformed_notify'
  | 'malformed_response'
  | 'bad_signature';

export class AlipaySignatureError extends Error {
  readonly provider = 'alipay';
  readonly reason: AlipaySignatureReason;

  constructor(reason: AlipaySignatureReason, message: string) {
    super(message);
    this.name = 'AlipaySignatureError';
    this.reason = reason;
  }
}

/** A value in Alipay's wire format that cannot be read: `invalid_amount` ("12.34" yuan), `invalid_time`. */
export type AlipayFormatReason = 'invalid_amount' | 'invalid_time';

export class AlipayFormatError extends Error {
  readonly provider = 'alipay';
  readonly reason: AlipayFormatReason;

  constructor(reason: AlipayFormatReason, message: string) {
    super(message);
    this.name = 'AlipayFormatError';
    this.reason = reason;
  }
}
