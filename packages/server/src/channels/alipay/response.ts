import type { KeyObject } from 'node:crypto';
import { AlipaySignatureError } from './errors.js';
import { rsa2Sign, rsa2Verify } from './keys.js';

/**
 * Gateway responses (research §B.4): `{"<method>_response":{…},"sign":"…"}`. The signature covers the
 * exact raw text of the node value as it appears in the body, so the node is cut out of the raw text,
 * never re-serialised. Gateway-level errors may come as `error_response`, often unsigned.
 */

/** `alipay.trade.precreate` → `alipay_trade_precreate_response`. */
export function alipayResponseKey(method: string): string {
  return `${method.replaceAll('.', '_')}_response`;
}

export const ALIPAY_ERROR_RESPONSE_KEY = 'error_response';

interface Span {
  start: number;
  end: number;
}

const malformed = (why: string) => new AlipaySignatureError('malformed_response', why);

/** Index just past the JSON string starting at `at` (which holds `"`). */
function skipString(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '"') return i + 1;
  }
  throw malformed('unterminated string');
}

/** Index just past the JSON value starting at `at` (the body is known to be valid JSON). */
function skipValue(text: string, at: number): number {
  const first = text[at];
  if (first === '"') return skipString(text, at);
  if (first === '{' || first === '[') {
    let depth = 0;
    for (let i = at; i < text.length; i++) {
      const ch = text[i];
      if (ch === '"') i = skipString(text, i) - 1;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw malformed('unbalanced brackets');
  }
  let i = at;
  while (i < text.length && !/[\s,}\]]/.test(text[i] as string)) i++;
  return i;
}

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && /\s/.test(text[i] as string)) i++;
  return i;
}

/**
 * The raw text span of each member of the top-level object. A key given twice is refused: the text we
 * verify and the value a JSON parser would keep could otherwise differ.
 */
function topLevelMembers(body: string): Map<string, Span> {
  try {
    JSON.parse(body);
  } catch {
    throw malformed('the response body is not JSON');
  }
  const members = new Map<string, Span>();
  let i = skipSpace(body, 0);
  if (body[i] !== '{') throw malformed('the response body is not a JSON object');
  i = skipSpace(body, i + 1);
  if (body[i] === '}') return members;
  for (;;) {
    const keyEnd = skipString(body, i);
    const key = JSON.parse(body.slice(i, keyEnd)) as string;
    i = skipSpace(body, keyEnd) + 1; // the ':'
    const start = skipSpace(body, i);
    const end = skipValue(body, start);
    if (members.has(key)) throw malformed(`${key} appears twice`);
    members.set(key, { start, end });
    i = skipSpace(body, end);
    if (body[i] === '}') return members;
    i = skipSpace(body, i + 1); // after the ','
  }
}

export interface AlipayResponseNode {
  /** `<method>_response`, or `error_response` for a gateway-level failure. */
  key: string;
  /** The node's raw text, byte for byte as in the body: what the signature covers. */
  text: string;
  /** The top-level `sign`, if any. */
  sign: string | undefined;
  /** `alipay_cert_sn`, present in certificate mode. */
  certSn: string | undefined;
}

/**
 * Cuts the node for `method` (or `error_response`) out of the raw body, unverified. Use it on its own
 * only to read an unsigned gateway error; trust a node only through {@link verifyAlipayResponse}.
 */
export function extractAlipayResponseNode(body: string, method: string): AlipayResponseNode {
  const members = topLevelMembers(body);
  const wanted = alipayResponseKey(method);
  const key = members.has(wanted)
    ? wanted
    : members.has(ALIPAY_ERROR_RESPONSE_KEY)
      ? ALIPAY_ERROR_RESPONSE_KEY
      : undefined;
  if (key === undefined) throw malformed(`the response has no ${wanted}`);
  const span = members.get(key) as Span;
  const text = body.slice(span.start, span.end);
  if (!text.startsWith('{')) throw malformed(`${key} is not an object`);
  const read = (name: string): string | undefined => {
    const at = members.get(name);
    if (at === undefined) return undefined;
    const value: unknown = JSON.parse(body.slice(at.start, at.end));
    if (typeof value !== 'string') throw malformed(`${name} is not a string`);
    return value;
  };
  return { key, text, sign: read('sign'), certSn: read('alipay_cert_sn') };
}

export interface VerifiedAlipayResponse {
  key: string;
  /** The verified node, parsed from the verified text. */
  node: Record<string, unknown>;
  text: string;
}

/**
 * Verifies a gateway response with the Alipay public key, over the node's raw text; if that fails and
 * the text holds `\/`, over the text with `\/` read as `/` (Alipay's Java SDK does the same). An
 * unsigned response is refused (`missing_sign`), whatever its code.
 */
export function verifyAlipayResponse(
  body: string,
  method: string,
  alipayPublicKey: KeyObject,
): VerifiedAlipayResponse {
  const node = extractAlipayResponseNode(body, method);
  if (!node.sign) throw new AlipaySignatureError('missing_sign', `${node.key} is not signed`);
  const verified =
    rsa2Verify(node.text, node.sign, alipayPublicKey) ||
    (node.text.includes('\\/') && rsa2Verify(node.text.replaceAll('\\/', '/'), node.sign, alipayPublicKey));
  if (!verified)
    throw new AlipaySignatureError('bad_signature', `the signature of ${node.key} does not verify`);
  return { key: node.key, node: JSON.parse(node.text) as Record<string, unknown>, text: node.text };
}

export interface SignResponseInput {
  method: string;
  /** The node: its exact text, or an object serialised once with JSON.stringify. */
  node: string | Readonly<Record<string, unknown>>;
  /** The sandbox's "Alipay private key". */
  privateKey: KeyObject;
  /** Put the node under `error_response` (a gateway-level failure) instead of `<method>_response`. */
  gatewayError?: boolean;
}

/** Builds a signed gateway response body as Alipay does (the sandbox's side): the text it signs is the text it writes. */
export function signAlipayResponse(input: SignResponseInput): string {
  const text = typeof input.node === 'string' ? input.node : JSON.stringify(input.node);
  if (text !== text.trim()) throw new TypeError('the response node text must not start or end with spaces');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TypeError('the response node must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError('the response node must be a JSON object');
  }
  const key = input.gatewayError ? ALIPAY_ERROR_RESPONSE_KEY : alipayResponseKey(input.method);
  return `{"${key}":${text},"sign":"${rsa2Sign(text, input.privateKey)}"}`;
}
