#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig } from '../config/config.js';
import { DataDirInUseError } from '../db/embedded-lock.js';
import { AppError } from '../errors.js';
import type { Services } from '../runtime.js';
import { VERSION } from '../version.js';

// The server, the database drivers and Fastify load only for the commands that need them, so
// `--help` and configuration errors answer at once.
const loadRuntime = () => import('../runtime.js');

const USAGE = `paycenter ${VERSION} — self-hosted payment center for WeChat Pay and Alipay

Usage:
  paycenter start [--role all|api|worker] run paycenter (migrates the database first): the HTTP API and
                                          the workers (all, the default), the API alone, or the workers alone
  paycenter migrate                       apply pending database migrations
  paycenter app create --name N --notify-url URL [--return-url URL] [--json]
  paycenter app list [--json]
  paycenter channel create --app ID --code CODE --config FILE.json [--fee-rate BPS] [--json]
  paycenter demo                          a demo app with all ten channels on the sandbox (data/demo.json)
  paycenter version

Configuration comes from the environment: DATABASE_URL (absent: embedded PGlite in
PAYCENTER_DATA_DIR, default ./data), PORT (8080), HOST (127.0.0.1), PAYCENTER_PUBLIC_URL,
PAYCENTER_MASTER_KEY, PAYCENTER_ADMIN_TOKEN, LOG_LEVEL. See the README.`;

class UsageError extends Error {}

function option(values: Record<string, string | boolean | undefined>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

/** Commands that work on the database directly, without the HTTP server. */
async function withServices<T>(config: Config, run: (services: Services) => Promise<T>): Promise<T> {
  const [
    { createServices, openConfiguredDatabase },
    { resolveMasterKey },
    { migrateToLatest },
    { systemClock },
  ] = await Promise.all([
    loadRuntime(),
    import('../config/data-dir-secrets.js'),
    import('../db/migrate.js'),
    import('../clock.js'),
  ]);
  const masterKey = resolveMasterKey(config);
  const database = await openConfiguredDatabase(config);
  try {
    await migrateToLatest(database.db);
    return await run(createServices(database, masterKey, systemClock));
  } finally {
    await database.close();
  }
}

function print(json: boolean, value: unknown, lines: string[]): void {
  console.log(json ? JSON.stringify(value, null, 2) : lines.join('\n'));
}

type Role = 'all' | 'api' | 'worker';

async function start(config: Config, role: Role): Promise<void> {
  const { createRuntime } = await loadRuntime();
  const runtime = await createRuntime(config, { workers: role !== 'api' });
  const stopOn = (signal: NodeJS.Signals) =>
    process.once(signal, () => {
      runtime.http.log.info({ signal }, 'shutting down');
      runtime.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(
            `paycenter: shutting down failed: ${error instanceof Error ? error.message : String(error)}`,
          );
          process.exit(1);
        },
      );
    });
  stopOn('SIGINT');
  stopOn('SIGTERM');
  if (role === 'worker') {
    console.log(
      `paycenter ${VERSION} worker running (webhook delivery, payment queries, expiry, refunds) on ${runtime.database.description}`,
    );
    return;
  }
  const address = await runtime.http.listen({ host: config.host, port: config.port });
  // With PORT=0 the real port is known only now.
  const base =
    config.port === 0 && process.env.PAYCENTER_PUBLIC_URL === undefined ? address : config.publicUrl;
  console.log(
    [
      `paycenter ${VERSION} listening on ${address}`,
      `  database   ${runtime.database.description}`,
      `  API        ${base}/api/v1`,
      `  docs       ${base}/docs`,
      `  admin API  ${base}/admin-api${
        runtime.adminTokenFile
          ? ` (admin token in ${runtime.adminTokenFile})`
          : config.adminToken
            ? ''
            : ' (disabled: set PAYCENTER_ADMIN_TOKEN)'
      }`,
    ].join('\n'),
  );
  runtime.setPublicUrl(base);
  if (runtime.sandbox) {
    const { createDemo, demoFile, readDemo, tryItLines } = await import('../demo/demo.js');
    let demo = readDemo(config.dataDir);
    if (!demo && config.database.kind === 'pglite') {
      demo = await createDemo(runtime.services, runtime.sandbox, base, config.dataDir);
      console.log(
        `  demo       created app ${demo.appId} with all ten channels on the sandbox (${shownPath(demoFile(config.dataDir))})`,
      );
    }
    if (demo) {
      // A fresh order to pay in the browser, so the printed cashier link works as it is.
      const { order } = await runtime.services.orders.create(
        { appId: demo.appId, keyId: 'demo' },
        { merchantOrderId: `demo-${Date.now()}`, subject: 'Demo tea', amount: 1 },
      );
      console.log(
        [
          '',
          `Pay as a customer would: ${base}/cashier/${order.id}?token=${order.clientToken}`,
          '',
          'Or through the API (sandbox, in bash):',
          ...tryItLines(demo, base).map((l) => `  ${l}`),
          '',
        ].join('\n'),
      );
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'notify-url': { type: 'string' },
      'return-url': { type: 'string' },
      app: { type: 'string' },
      code: { type: 'string' },
      config: { type: 'string' },
      'fee-rate': { type: 'string' },
      json: { type: 'boolean', default: false },
      role: { type: 'string', default: 'all' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, sub] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return;
  }
  if (command === 'version') {
    console.log(VERSION);
    return;
  }
  const json = values.json === true;
  const config = loadConfig();
  switch (`${command} ${sub ?? ''}`.trim()) {
    case 'start': {
      const role = values.role as string;
      if (role !== 'all' && role !== 'api' && role !== 'worker')
        throw new UsageError('--role must be all, api or worker');
      return start(config, role);
    }
    case 'migrate': {
      const [{ openConfiguredDatabase }, { migrateToLatest }] = await Promise.all([
        loadRuntime(),
        import('../db/migrate.js'),
      ]);
      const database = await openConfiguredDatabase(config);
      try {
        const applied = await migrateToLatest(database.db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date');
      } finally {
        await database.close();
      }
      return;
    }
    case 'app create': {
      const created = await withServices(config, (s) =>
        s.apps.create({
          name: option(values, 'name'),
          notifyUrl: option(values, 'notify-url'),
          returnUrl: typeof values['return-url'] === 'string' ? values['return-url'] : null,
        }),
      );
      print(json, created, [
        `app ${created.id} created: ${created.name}`,
        `  API key         ${created.apiKey}`,
        `  webhook secret  ${created.webhookSecret}`,
        'Both secrets are shown only now: store them.',
      ]);
      return;
    }
    case 'app list': {
      const apps = await withServices(config, (s) => s.apps.list());
      print(
        json,
        apps,
        apps.length ? apps.map((a) => `${a.id}\t${a.status}\t${a.name}\t${a.notifyUrl}`) : ['no apps yet'],
      );
      return;
    }
    case 'channel create': {
      const file = option(values, 'config');
      let channelConfig: unknown;
      try {
        channelConfig = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        throw new UsageError(`--config ${file}: ${error instanceof Error ? error.message : String(error)}`);
      }
      const feeRate = values['fee-rate'];
      if (feeRate !== undefined && !/^\d+$/.test(String(feeRate)))
        throw new UsageError('--fee-rate must be whole basis points');
      const channel = await withServices(config, (s) =>
        s.channels.create({
          appId: option(values, 'app'),
          code: option(values, 'code'),
          config: channelConfig,
          ...(feeRate === undefined ? {} : { feeRate: Number(feeRate) }),
        }),
      );
      print(json, channel, [`channel ${channel.id} created: ${channel.code} for app ${channel.appId}`]);
      return;
    }
    case 'demo': {
      if (!config.sandbox) throw new UsageError('the demo runs on the sandbox: set PAYCENTER_SANDBOX=true');
      const [{ createDemo, demoFile, readDemo, tryItLines }, { sandboxStateFile }, { createSandbox }] =
        await Promise.all([import('../demo/demo.js'), loadRuntime(), import('paycenter-sandbox')]);
      const existing = readDemo(config.dataDir);
      const demo =
        existing ??
        (await withServices(config, (services) =>
          createDemo(
            services,
            createSandbox({
              baseUrl: `${config.publicUrl}/__sandbox`,
              stateFile: sandboxStateFile(config.dataDir),
            }),
            config.publicUrl,
            config.dataDir,
          ),
        ));
      print(json, demo, [
        `${existing ? 'demo app' : 'created demo app'} ${demo.appId} with all ten channels on the sandbox (${shownPath(demoFile(config.dataDir))})`,
        'Start paycenter, then try it (in bash):',
        ...tryItLines(demo, config.publicUrl).map((l) => `  ${l}`),
      ]);
      return;
    }
    default:
      throw new UsageError(`unknown command "${positionals.join(' ')}"; see paycenter --help`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof UsageError || error instanceof DataDirInUseError) {
    console.error(`paycenter: ${error.message}`);
  } else if (error instanceof AppError) {
    console.error(`paycenter: ${error.code}: ${error.message}`);
  } else if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
    console.error(`paycenter: ${error.message}`);
  } else {
    console.error(`paycenter: ${error instanceof Error ? error.message : String(error)}`);
    if (process.env.LOG_LEVEL === 'debug' && error instanceof Error) console.error(error.stack);
  }
  process.exit(1);
});

/** A path as the user would type it from here: relative when inside the working directory. */
function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}
