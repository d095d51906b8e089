/** Settings every benchmark shares, from the environment. */

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A PostgreSQL database the benchmarks may create and drop scratch databases from. */
export function adminDatabaseUrl(): string {
  const url = process.env.BENCH_DATABASE_URL?.trim();
  return url === undefined || url === '' ? DEFAULT_DATABASE_URL : url;
}

/** Length of each measured run; BENCH_SECONDS shortens it for a quick check. */
export function measuredSeconds(fallback = 10): number {
  const raw = process.env.BENCH_SECONDS?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 3600) {
    throw new Error(`BENCH_SECONDS must be a whole number of seconds from 1 to 3600 (got "${raw}")`);
  }
  return Number(raw);
}
