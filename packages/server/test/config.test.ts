import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Config, ConfigError, loadConfig } from '../src/config/config.js';

const CWD = path.resolve('/srv/paycenter');
const KEY = randomBytes(32).toString('base64');
const PG_URL = 'postgres://paycenter:pg-pass@db.internal:5432/paycenter';

type Env = Record<string, string>;

function configError(env: Env): ConfigError {
  try {
    loadConfig(env, CWD);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('needs nothing at all: embedded PGlite in ./data, port 8080 on 127.0.0.1, sandbox on', () => {
    expect(loadConfig({}, CWD)).toEqual({
      database: { kind: 'pglite' },
      dataDir: path.join(CWD, 'data'),
      host: '127.0.0.1',
      port: 8080,
      publicUrl: 'http://localhost:8080',
      masterKey: undefined,
      adminToken: undefined,
      sandbox: true,
      sandboxTimeScale: 1,
      notifySchedule: null,
      notifyAllowPrivate: true,
      lifecycle: {
        paymentQuery: [60, 120, 300, 600, 1800, 3600],
        refundQuery: [10, 30, 60, 300, 1800, 3600],
        expiryLeaseSeconds: 60,
        jobIntervalMs: 2000,
      },
      eventBusUrl: undefined,
      rateLimitPerMinute: 6000,
      bodyLimitBytes: 256 * 1024,
      logLevel: 'info',
    } satisfies Config);
  });

  it('treats empty and blank variables as absent', () => {
    const blank = ['DATABASE_URL', 'PORT', 'HOST', 'PAYCENTER_MASTER_KEY', 'PAYCENTER_SANDBOX', 'LOG_LEVEL'];
    expect(loadConfig(Object.fromEntries(blank.map((name) => [name, '  '])), CWD)).toEqual(
      loadConfig({}, CWD),
    );
  });
});

describe('loadConfig accepts good values', () => {
  const cases: { name: string; env: Env; expected: Partial<Config> }[] = [
    {
      name: 'DATABASE_URL selects PostgreSQL and turns the sandbox off by default',
      env: { DATABASE_URL: PG_URL, PAYCENTER_MASTER_KEY: KEY },
      expected: { database: { kind: 'postgres', url: PG_URL }, sandbox: false },
    },
    {
      name: 'the postgresql:// scheme',
      env: { DATABASE_URL: 'postgresql://db/pay', PAYCENTER_MASTER_KEY: KEY },
      expected: { database: { kind: 'postgres', url: 'postgresql://db/pay' } },
    },
    {
      name: 'PAYCENTER_SANDBOX=false in embedded mode',
      env: { PAYCENTER_SANDBOX: 'false' },
      expected: { sandbox: false, database: { kind: 'pglite' } },
    },
    {
      name: 'PAYCENTER_SANDBOX=on with PostgreSQL',
      env: { DATABASE_URL: PG_URL, PAYCENTER_MASTER_KEY: KEY, PAYCENTER_SANDBOX: 'on' },
      expected: { sandbox: true },
    },
    { name: 'PORT=0 (any free port)', env: { PORT: '0' }, expected: { port: 0 } },
    {
      name: 'PORT=65535, which the default public URL follows',
      env: { PORT: '65535' },
      expected: { port: 65535, publicUrl: 'http://localhost:65535' },
    },
    { name: 'HOST', env: { HOST: '0.0.0.0' }, expected: { host: '0.0.0.0' } },
    {
      name: 'PAYCENTER_PUBLIC_URL without its trailing slash',
      env: { PAYCENTER_PUBLIC_URL: 'https://pay.example.com/' },
      expected: { publicUrl: 'https://pay.example.com' },
    },
    {
      name: 'PAYCENTER_PUBLIC_URL with a path and several trailing slashes',
      env: { PAYCENTER_PUBLIC_URL: 'http://gw.example:8443/paycenter//', PORT: '9000' },
      expected: { publicUrl: 'http://gw.example:8443/paycenter', port: 9000 },
    },
    {
      name: 'a relative PAYCENTER_DATA_DIR, resolved against the working directory',
      env: { PAYCENTER_DATA_DIR: 'var/pc' },
      expected: { dataDir: path.join(CWD, 'var', 'pc') },
    },
    {
      name: 'an absolute PAYCENTER_DATA_DIR',
      env: { PAYCENTER_DATA_DIR: path.resolve('/var/lib/paycenter') },
      expected: { dataDir: path.resolve('/var/lib/paycenter') },
    },
    {
      name: 'a 32-byte PAYCENTER_MASTER_KEY in base64',
      env: { PAYCENTER_MASTER_KEY: KEY },
      expected: { masterKey: Buffer.from(KEY, 'base64') },
    },
    {
      name: 'a PAYCENTER_ADMIN_TOKEN of 24 characters',
      env: { PAYCENTER_ADMIN_TOKEN: 'x'.repeat(24) },
      expected: { adminToken: 'x'.repeat(24) },
    },
    { name: 'LOG_LEVEL=debug', env: { LOG_LEVEL: 'debug' }, expected: { logLevel: 'debug' } },
    {
      name: 'an amqp:// EVENT_BUS_URL',
      env: { EVENT_BUS_URL: 'amqp://guest:guest@mq:5672/' },
      expected: { eventBusUrl: 'amqp://guest:guest@mq:5672/' },
    },
    {
      name: 'an amqps:// EVENT_BUS_URL',
      env: { EVENT_BUS_URL: 'amqps://mq.example' },
      expected: { eventBusUrl: 'amqps://mq.example' },
    },
    {
      name: 'PAYCENTER_RATE_LIMIT=0 (limit off)',
      env: { PAYCENTER_RATE_LIMIT: '0' },
      expected: { rateLimitPerMinute: 0 },
    },
    {
      name: 'the lifecycle schedules and job interval, in seconds or with units',
      env: {
        PAYCENTER_QUERY_SCHEDULE: '30s,2m,1h',
        PAYCENTER_REFUND_QUERY_SCHEDULE: '5,60',
        PAYCENTER_JOB_INTERVAL_MS: '500',
      },
      expected: {
        lifecycle: {
          paymentQuery: [30, 120, 3600],
          refundQuery: [5, 60],
          expiryLeaseSeconds: 60,
          jobIntervalMs: 500,
        },
      },
    },
  ];

  it.each(cases)('$name', ({ env, expected }) => {
    expect(loadConfig(env, CWD)).toMatchObject(expected);
  });
});

describe('loadConfig refuses bad values with a one-line ConfigError naming the variable', () => {
  const cases: { name: string; variable: string; env: Env }[] = [
    { name: 'DATABASE_URL that is not a URL', variable: 'DATABASE_URL', env: { DATABASE_URL: 'not-a-url' } },
    {
      name: 'DATABASE_URL of another database',
      variable: 'DATABASE_URL',
      env: { DATABASE_URL: 'mysql://root@db:3306/pay', PAYCENTER_MASTER_KEY: KEY },
    },
    { name: 'PORT=abc', variable: 'PORT', env: { PORT: 'abc' } },
    { name: 'PORT=-1', variable: 'PORT', env: { PORT: '-1' } },
    { name: 'PORT=70000', variable: 'PORT', env: { PORT: '70000' } },
    { name: 'PORT=80.5', variable: 'PORT', env: { PORT: '80.5' } },
    { name: 'PORT with a line break in it', variable: 'PORT', env: { PORT: '80\n80' } },
    {
      name: 'LOG_LEVEL with a line break in it',
      variable: 'LOG_LEVEL',
      env: { LOG_LEVEL: 'info\nfake line' },
    },
    {
      name: 'PAYCENTER_MASTER_KEY that is not base64',
      variable: 'PAYCENTER_MASTER_KEY',
      env: { PAYCENTER_MASTER_KEY: 'this is not base64!' },
    },
    {
      name: 'PAYCENTER_MASTER_KEY of 16 bytes',
      variable: 'PAYCENTER_MASTER_KEY',
      env: { PAYCENTER_MASTER_KEY: randomBytes(16).toString('base64') },
    },
    {
      name: 'PAYCENTER_MASTER_KEY of 33 bytes',
      variable: 'PAYCENTER_MASTER_KEY',
      env: { PAYCENTER_MASTER_KEY: randomBytes(33).toString('base64') },
    },
    {
      name: 'no PAYCENTER_MASTER_KEY with DATABASE_URL',
      variable: 'PAYCENTER_MASTER_KEY',
      env: { DATABASE_URL: PG_URL },
    },
    {
      name: 'a short PAYCENTER_ADMIN_TOKEN',
      variable: 'PAYCENTER_ADMIN_TOKEN',
      env: { PAYCENTER_ADMIN_TOKEN: 'x'.repeat(23) },
    },
    { name: 'PAYCENTER_SANDBOX=maybe', variable: 'PAYCENTER_SANDBOX', env: { PAYCENTER_SANDBOX: 'maybe' } },
    { name: 'LOG_LEVEL=loud', variable: 'LOG_LEVEL', env: { LOG_LEVEL: 'loud' } },
    {
      name: 'PAYCENTER_SANDBOX_TIME_SCALE=0',
      variable: 'PAYCENTER_SANDBOX_TIME_SCALE',
      env: { PAYCENTER_SANDBOX_TIME_SCALE: '0' },
    },
    {
      name: 'PAYCENTER_SANDBOX_TIME_SCALE=fast',
      variable: 'PAYCENTER_SANDBOX_TIME_SCALE',
      env: { PAYCENTER_SANDBOX_TIME_SCALE: 'fast' },
    },
    {
      name: 'EVENT_BUS_URL over http://',
      variable: 'EVENT_BUS_URL',
      env: { EVENT_BUS_URL: 'http://mq.example:15672' },
    },
    {
      name: 'PAYCENTER_PUBLIC_URL over ftp://',
      variable: 'PAYCENTER_PUBLIC_URL',
      env: { PAYCENTER_PUBLIC_URL: 'ftp://pay.example' },
    },
    {
      name: 'PAYCENTER_RATE_LIMIT below zero',
      variable: 'PAYCENTER_RATE_LIMIT',
      env: { PAYCENTER_RATE_LIMIT: '-5' },
    },
    {
      name: 'PAYCENTER_BODY_LIMIT below 1 KiB',
      variable: 'PAYCENTER_BODY_LIMIT',
      env: { PAYCENTER_BODY_LIMIT: '100' },
    },
    {
      name: 'PAYCENTER_QUERY_SCHEDULE with a word in it',
      variable: 'PAYCENTER_QUERY_SCHEDULE',
      env: { PAYCENTER_QUERY_SCHEDULE: '60,soon' },
    },
    {
      name: 'PAYCENTER_REFUND_QUERY_SCHEDULE with a zero delay',
      variable: 'PAYCENTER_REFUND_QUERY_SCHEDULE',
      env: { PAYCENTER_REFUND_QUERY_SCHEDULE: '0,10' },
    },
    {
      name: 'PAYCENTER_JOB_INTERVAL_MS below 10 ms',
      variable: 'PAYCENTER_JOB_INTERVAL_MS',
      env: { PAYCENTER_JOB_INTERVAL_MS: '5' },
    },
  ];

  it.each(cases)('$name', ({ variable, env }) => {
    const error = configError(env);
    expect(error.name).toBe('ConfigError');
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable} `)).toBe(true);
    expect(error.message).not.toMatch(/[\r\n]/);
  });

  it.each([
    ['a scheme other than postgres', { DATABASE_URL: 'mysql://paycenter:pg-pass@db/pay' }],
    ['an unparsable URL', { DATABASE_URL: 'postgres://paycenter:pg-pass@db:port/pay' }],
    ['a URL without "://"', { DATABASE_URL: 'postgres//paycenter:pg-pass@db/pay' }],
    ['a good URL but no master key', { DATABASE_URL: PG_URL }],
  ])('never shows the DATABASE_URL password in the message: %s', (_name, env) => {
    const error = configError(env);
    expect(error.message).not.toContain('pg-pass');
    expect(String(error)).not.toContain('pg-pass');
  });
});
