import { Agent, request } from 'undici';

/** The one way channel clients reach a provider, so tests and the sandbox can stand in for the network. */
export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

export interface TransportOptions {
  /** Whole-request deadline; providers answer in well under a second when healthy. */
  timeoutMs?: number;
  /** Larger answers are refused: no provider API response comes near it. */
  maxResponseBytes?: number;
}

/** undici with keep-alive connections shared by every channel client of the process. */
export function undiciTransport(options: TransportOptions = {}): HttpTransport {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const dispatcher = new Agent({
    keepAliveTimeout: 30_000,
    connections: 64,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    maxResponseSize: options.maxResponseBytes ?? 1024 * 1024,
  });
  return async ({ method, url, headers, body }) => {
    const response = await request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const flat: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { status: response.statusCode, headers: flat, body: await response.body.text() };
  };
}
