/**
 * Whether a merchant's answer to a webhook counts as delivered (DESIGN §6): the status is 2xx, and the
 * body is not a JSON object carrying a `code` other than `0`, `"0"` or `"SUCCESS"`. So `200 SUCCESS`,
 * `200 {"code":0}`, `200 {"ok":true}` and `204` deliver; `200 {"code":500}`, `200 {"code":"FAIL"}`, a
 * 3xx (redirects are not followed), a 4xx or a 5xx do not. A `code` of `null` counts as absent.
 * Network failures (timeout, refused connection, TLS) never reach this function: they are not answers.
 */
export type Outcome = { delivered: true } | { delivered: false; reason: string };

const ACCEPTED_CODES: ReadonlySet<unknown> = new Set([0, '0', 'SUCCESS']);

export function judgeResponse(status: number, body: string): Outcome {
  if (status < 200 || status > 299) {
    const kind = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
    return { delivered: false, reason: `HTTP ${status}${kind}` };
  }
  const code = codeOf(body);
  if (code === undefined || ACCEPTED_CODES.has(code)) return { delivered: true };
  return {
    delivered: false,
    reason: `HTTP ${status} but the body's code is ${JSON.stringify(code)} (expected 0, "0" or "SUCCESS")`,
  };
}

/** The `code` of a JSON object body; undefined when the body is not a JSON object or has none. */
function codeOf(body: string): unknown {
  const text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  // Only an object can carry a code: skip parsing anything that cannot be one.
  if (!text.trimStart().startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const code = (parsed as Record<string, unknown>).code;
  return code === null ? undefined : code;
}
