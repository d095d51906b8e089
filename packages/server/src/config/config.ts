import path from 'node:path';
import { DEFAULT_LIFECYCLE_SCHEDULES, type LifecycleSchedules } from '../jobs/schedules.js';
import { parseNotifySchedule } from '../notify/schedule.js';

/** Everything paycenter reads from its environment, validated once at start-up. */
export interface Config {
  /** `postgres` when DATABASE_URL is set, else the embedded PGlite database in `dataDir`. */
  database: { kind: 'postgres'; url: string } | { kind: 'pglite' };
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  /** 32 bytes; absent in embedded mode means "generate or load one from the data dir". */
  masterKey: Buffer | undefined;
  adminToken: string | undefined;
  sandbox: boolean;
  /** Scales the sandbox's callback retry delays (1 = the providers' real schedules). */
  sandboxTimeScale: number;
  eventBusUrl: string | undefined;
  /** The webhook retry schedule of apps without their own (seconds after each try); null: the built-in one. */
  notifySchedule: number[] | null;
  /** Deliver webhooks to loopback and private addresses (the sandbox demo's receiver is local). */
  notifyAllowPrivate: boolean;
  /** When the payment-query, refund-query and expiry jobs act. */
  lifecycle: LifecycleSchedules;
  /** Requests per minute per API key on the merchant API; 0 turns the limit off. */
  rateLimitPerMinute: number;
  bodyLimitBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** A configuration problem, named by the variable that causes it. Printed as one line, never a stack. */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable} ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}

function positiveNumber(env: Env, name: string, fallback: number): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(raw) || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(name, `must be a positive number (got ${JSON.stringify(raw)})`);
  }
  return value;
}

function notifySchedule(env: Env): number[] | null {
  const raw = nonEmpty(env, 'PAYCENTER_NOTIFY_SCHEDULE');
  if (raw === undefined) return null;
  return [...parseNotifySchedule(raw, (message) => new ConfigError('PAYCENTER_NOTIFY_SCHEDULE', message))];
}

function schedule(env: Env, name: string, fallback: readonly number[]): readonly number[] {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  return parseNotifySchedule(raw, (message) => new ConfigError(name, message));
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = nonEmpty(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false (got ${JSON.stringify(raw)})`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The value may hold a password: never echo it.
    throw new ConfigError(
      name,
      `is not a valid URL (expected ${protocols.map((p) => `${p}//…`).join(' or ')})`,
    );
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`);
  }
  return raw;
}

export function parseMasterKey(raw: string, variable = 'PAYCENTER_MASTER_KEY'): Buffer {
  const trimmed = raw.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new ConfigError(
      variable,
      'must be 32 bytes encoded in base64 (generate one with `openssl rand -base64 32`)',
    );
  }
  return key;
}

export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const database: Config['database'] = databaseUrl
    ? { kind: 'postgres', url: databaseUrl }
    : { kind: 'pglite' };
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const host = nonEmpty(env, 'HOST') ?? '127.0.0.1';
  const publicUrl = (
    url(env, 'PAYCENTER_PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port}`
  ).replace(/\/+$/, '');
  const masterKeyRaw = nonEmpty(env, 'PAYCENTER_MASTER_KEY');
  const masterKey = masterKeyRaw === undefined ? undefined : parseMasterKey(masterKeyRaw);
  if (masterKey === undefined && database.kind === 'postgres') {
    throw new ConfigError(
      'PAYCENTER_MASTER_KEY',
      'is required with DATABASE_URL: every instance must share it (generate one with `openssl rand -base64 32`)',
    );
  }
  const adminToken = nonEmpty(env, 'PAYCENTER_ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 24) {
    throw new ConfigError('PAYCENTER_ADMIN_TOKEN', 'must be at least 24 characters long');
  }
  const sandbox = boolean(env, 'PAYCENTER_SANDBOX', database.kind === 'pglite');
  const logLevel = (nonEmpty(env, 'LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      'LOG_LEVEL',
      `must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`,
    );
  }
  return {
    database,
    dataDir: path.resolve(cwd, nonEmpty(env, 'PAYCENTER_DATA_DIR') ?? 'data'),
    host,
    port,
    publicUrl,
    masterKey,
    adminToken,
    sandbox,
    sandboxTimeScale: positiveNumber(env, 'PAYCENTER_SANDBOX_TIME_SCALE', 1),
    eventBusUrl: url(env, 'EVENT_BUS_URL', ['amqp:', 'amqps:']),
    notifySchedule: notifySchedule(env),
    notifyAllowPrivate: boolean(env, 'PAYCENTER_NOTIFY_ALLOW_PRIVATE', sandbox),
    lifecycle: {
      paymentQuery: schedule(env, 'PAYCENTER_QUERY_SCHEDULE', DEFAULT_LIFECYCLE_SCHEDULES.paymentQuery),
      refundQuery: schedule(env, 'PAYCENTER_REFUND_QUERY_SCHEDULE', DEFAULT_LIFECYCLE_SCHEDULES.refundQuery),
      expiryLeaseSeconds: DEFAULT_LIFECYCLE_SCHEDULES.expiryLeaseSeconds,
      jobIntervalMs: integer(
        env,
        'PAYCENTER_JOB_INTERVAL_MS',
        DEFAULT_LIFECYCLE_SCHEDULES.jobIntervalMs,
        10,
        3_600_000,
      ),
    },
    rateLimitPerMinute: integer(env, 'PAYCENTER_RATE_LIMIT', 6000, 0, 10_000_000),
    bodyLimitBytes: integer(env, 'PAYCENTER_BODY_LIMIT', 256 * 1024, 1024, 64 * 1024 * 1024),
    logLevel,
  };
}
