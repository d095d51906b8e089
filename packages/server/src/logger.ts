import type { Config } from './config/config.js';

/**
 * Log settings. Secrets must never reach a log line: auth headers and any field named like a secret
 * are censored, and the query string (which carries the browser's client token) is cut from URLs.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.apiKey',
  '*.webhookSecret',
  '*.clientToken',
  '*.token',
  '*.config',
  '*.password',
  '*.privateKey',
  '*.merchantPrivateKey',
  '*.apiV3Key',
  '*.masterKey',
  '*.adminToken',
];

export function loggerOptions(level: Config['logLevel']) {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        method: req.method,
        url: req.url.split('?')[0],
        remoteAddress: req.ip,
      }),
    },
  };
}
