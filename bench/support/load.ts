import autocannon from 'autocannon';

export interface LoadSpec {
  title: string;
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Every `[<id>]` in it becomes a fresh unique id per request. */
  body?: string;
  connections: number;
  seconds: number;
}

export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  completed: number;
}

export function fire(spec: LoadSpec): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        title: spec.title,
        url: spec.url,
        method: spec.method,
        headers: {
          ...(spec.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...spec.headers,
        },
        ...(spec.body === undefined ? {} : { body: spec.body, idReplacement: true }),
        connections: spec.connections,
        duration: spec.seconds,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

/**
 * Throws unless every request was answered 2xx: a run that measured error responses (a rate limit,
 * a conflict, a crash) says nothing about the route, so it must not print as if it did.
 */
export function assertAllSucceeded(
  result: autocannon.Result,
  serverOutput: string,
  expectedStatus?: number,
): void {
  const expected =
    expectedStatus === undefined ? result['2xx'] : (result.statusCodeStats[expectedStatus]?.count ?? 0);
  const problems = [
    result.non2xx > 0 ? `${result.non2xx} non-2xx responses` : '',
    expected < result['2xx'] ? `${result['2xx'] - expected} 2xx responses other than ${expectedStatus}` : '',
    result.errors > 0 ? `${result.errors} errors` : '',
    result.timeouts > 0 ? `${result.timeouts} timeouts` : '',
    result['2xx'] === 0 ? 'no 2xx response at all' : '',
  ].filter((problem) => problem !== '');
  if (problems.length === 0) return;
  const statuses = Object.entries(result.statusCodeStats)
    .map(([status, { count }]) => `${status}: ${count}`)
    .join(', ');
  throw new Error(
    `${result.title ?? result.url}: ${problems.join(', ')} (status codes: ${statuses || 'none'}); ` +
      `the server printed:\n${serverOutput || '(nothing)'}`,
  );
}

export function figuresOf(result: autocannon.Result): LoadFigures {
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    completed: result.requests.total,
  };
}
