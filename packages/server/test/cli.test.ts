import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MIGRATION_NAMES } from '../src/db/migrate.js';
import { backends, testDatabaseUrlFor } from './helpers/backends.js';
import { type CliResult, cleanUpCli, makeTempDir, runCli, spawnCli } from './helpers/cli.js';

/** Spawning costs ~1.5 s (tsx compiles on the fly); a first PGlite start in an empty directory ~5 s more. */
const SPAWN_TIMEOUT = 60_000;
const execFileAsync = promisify(execFile);

afterAll(cleanUpCli);

/** A refusal: exit 1, one `paycenter: …` line on stderr, no stack trace, nothing on stdout. */
function expectOneLineError(result: CliResult, mentions: string): string {
  expect(result, result.stderr).toMatchObject({ code: 1, stdout: '' });
  expect(result.stderr).toMatch(/^paycenter: [^\n]+\n$/);
  expect(result.stderr).toContain(mentions);
  expect(result.stderr).not.toContain('    at ');
  return result.stderr.trim();
}

function expectSuccess(result: CliResult): string {
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  return result.stdout;
}

function fileMode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe.concurrent('cli without a database', () => {
  it.each([
    ['PORT', 'abc'],
    ['DATABASE_URL', 'not-a-url'],
    ['PAYCENTER_MASTER_KEY', 'short'],
  ])(
    'refuses to start with %s=%s in one line, touching nothing',
    async (variable, value) => {
      const cwd = makeTempDir();
      const result = await runCli(['start'], { cwd, env: { [variable]: value } });
      expect(expectOneLineError(result, variable)).toMatch(new RegExp(`^paycenter: ${variable} `));
      expect(fs.readdirSync(cwd)).toEqual([]);
    },
    SPAWN_TIMEOUT,
  );

  it(
    'refuses an unknown command in one line',
    async () => {
      const result = await runCli(['bogus'], { cwd: makeTempDir() });
      expect(expectOneLineError(result, '"bogus"')).toContain('--help');
    },
    SPAWN_TIMEOUT,
  );

  it(
    'prints its usage for --help',
    async () => {
      const stdout = expectSuccess(await runCli(['--help'], { cwd: makeTempDir() }));
      expect(stdout).toMatch(/^paycenter \S+ — /);
      for (const command of ['paycenter start', 'paycenter migrate', 'paycenter app create']) {
        expect(stdout).toContain(command);
      }
    },
    SPAWN_TIMEOUT,
  );
});

describe('cli apps and channels on an embedded data dir', () => {
  const cwd = makeTempDir();
  let app: { id: string; apiKey: string; webhookSecret: string; name: string; notifyUrl: string };
  const keys = () =>
    generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
  const merchant = keys();
  const platform = keys();
  const wechatPay: Record<string, string> = {
    mchId: '1900000109',
    appId: 'wxd678efh567hg6787',
    apiV3Key: 'a'.repeat(32),
    merchantSerialNo: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1',
    merchantPrivateKey: merchant.privateKey,
    platformPublicKey: platform.publicKey,
    platformPublicKeyId: 'PUB_KEY_ID_0119000001092024000000000001',
  };

  it(
    'creates an app, shows its secrets once, lists it, and keeps the master key owner-only',
    async () => {
      const created = expectSuccess(
        await runCli(
          ['app', 'create', '--name', 'Shop', '--notify-url', 'https://shop.example/hook', '--json'],
          {
            cwd,
          },
        ),
      );
      app = JSON.parse(created);
      expect(app).toMatchObject({
        id: expect.stringMatching(/^\d+$/),
        name: 'Shop',
        status: 'active',
        notifyUrl: 'https://shop.example/hook',
        apiKey: expect.stringMatching(/^sk_[0-9A-Za-z]{40}$/),
        webhookSecret: expect.stringMatching(/^whsec_/),
      });

      const listed = JSON.parse(expectSuccess(await runCli(['app', 'list', '--json'], { cwd })));
      expect(listed).toEqual([
        {
          id: app.id,
          name: 'Shop',
          status: 'active',
          notifyUrl: 'https://shop.example/hook',
          returnUrl: null,
          notifySchedule: null,
          autoRefundDuplicates: true,
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        },
      ]);
      expect(JSON.stringify(listed)).not.toContain(app.apiKey);
      expect(JSON.stringify(listed)).not.toContain(app.webhookSecret);
      expect(fileMode(path.join(cwd, 'data', 'master.key'))).toBe(0o600);
      // The lock is gone once each command is done.
      expect(fs.existsSync(path.join(cwd, 'data', 'paycenter.pid'))).toBe(false);
    },
    SPAWN_TIMEOUT,
  );

  it(
    'refuses an app whose notify URL is not http(s), in one line',
    async () => {
      const result = await runCli(['app', 'create', '--name', 'Shop', '--notify-url', 'ftp://x'], { cwd });
      expectOneLineError(result, 'notifyUrl');
    },
    SPAWN_TIMEOUT,
  );

  it(
    'creates a WeChat Pay channel from a config file without echoing the credentials',
    async () => {
      fs.writeFileSync(path.join(cwd, 'wx.json'), JSON.stringify(wechatPay));
      const stdout = expectSuccess(
        await runCli(
          ['channel', 'create', '--app', app.id, '--code', 'wx_native', '--config', 'wx.json', '--json'],
          {
            cwd,
          },
        ),
      );
      const channel = JSON.parse(stdout);
      expect(channel).toMatchObject({
        id: expect.stringMatching(/^\d+$/),
        appId: app.id,
        code: 'wx_native',
        feeRate: 0,
      });
      expect(channel).not.toHaveProperty('config');
      expect(stdout).not.toContain('PRIVATE KEY');
      expect(stdout).not.toContain(merchant.privateKey.split('\n')[1]);
      expect(stdout).not.toContain(wechatPay.apiV3Key);
    },
    SPAWN_TIMEOUT,
  );

  it(
    'refuses a channel config without apiV3Key, naming config.apiV3Key',
    async () => {
      const { apiV3Key: _omitted, ...incomplete } = wechatPay;
      fs.writeFileSync(path.join(cwd, 'wx-incomplete.json'), JSON.stringify(incomplete));
      const result = await runCli(
        ['channel', 'create', '--app', app.id, '--code', 'wx_h5', '--config', 'wx-incomplete.json', '--json'],
        { cwd },
      );
      expectOneLineError(result, 'config.apiV3Key');
    },
    SPAWN_TIMEOUT,
  );
});

describe('cli demo', () => {
  it(
    'sets up the demo once in the data dir it was given, and names the file where it wrote the key',
    async () => {
      const cwd = makeTempDir();
      const env = { PAYCENTER_DATA_DIR: 'state/pay' };
      const first = expectSuccess(await runCli(['demo'], { cwd, env }));
      expect(first).toContain(
        'created demo app 1 with all ten channels on the sandbox (state/pay/demo.json)',
      );
      expect(fileMode(path.join(cwd, 'state', 'pay', 'demo.json'))).toBe(0o600);
      const again = expectSuccess(await runCli(['demo'], { cwd, env }));
      expect(again).toContain('demo app 1 with all ten channels on the sandbox (state/pay/demo.json)');
      expect(again).not.toContain('created');
    },
    SPAWN_TIMEOUT,
  );
});

describe('cli start', () => {
  it('serves /health and /ready, locks the data dir while running, and stops cleanly on SIGTERM', async () => {
    const cwd = makeTempDir();
    const server = spawnCli(['start'], { cwd, env: { PORT: '0' } });
    try {
      const [, base] = await server.waitForStdout(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 50_000);
      // The first embedded start sets up a demo on the sandbox and prints three lines to paste.
      const [, tryIt] = await server.waitForStdout(
        /Or through the API \(sandbox, in bash\):\n((?: {2}[^\n]+\n){3})/,
        50_000,
      );
      const pasted = await execFileAsync('bash', ['-c', tryIt!], { cwd, timeout: 20_000 });
      const [, cashier] = await server.waitForStdout(/Pay as a customer would: (\S+)/, 5_000);
      const page = await fetch(cashier!);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('Demo tea');
      expect(JSON.parse(pasted.stdout)).toMatchObject({
        status: 'paid',
        channelCode: 'wx_native',
        amount: 1,
      });
      expect(fileMode(path.join(cwd, 'data', 'demo.json'))).toBe(0o600);
      expect(fileMode(path.join(cwd, 'data', 'sandbox.json'))).toBe(0o600);
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });
      for (const secret of ['master.key', 'admin-token']) {
        expect(fileMode(path.join(cwd, 'data', secret)), secret).toBe(0o600);
      }

      const locked = await runCli(['app', 'list'], { cwd });
      expect(expectOneLineError(locked, 'data')).toBe(
        `paycenter: the embedded database in data is in use by process ${server.pid}`,
      );

      server.child.kill('SIGTERM');
      const stopped = await server.exited(20_000);
      expect(stopped, stopped.stderr).toMatchObject({ code: 0, signal: null });
    } finally {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }

    expect(fs.existsSync(path.join(cwd, 'data', 'paycenter.pid'))).toBe(false);
    expect(expectSuccess(await runCli(['app', 'list'], { cwd }))).toMatch(/^1\tactive\tDemo shop\t/);
  }, 90_000);
});

describe('cli migrate', () => {
  it(
    'applies the migrations to a fresh embedded data dir, then finds nothing to do',
    async () => {
      const cwd = makeTempDir();
      expect(expectSuccess(await runCli(['migrate'], { cwd }))).toBe(
        `applied: ${MIGRATION_NAMES.join(', ')}\n`,
      );
      expect(expectSuccess(await runCli(['migrate'], { cwd }))).toBe('the database is up to date\n');
    },
    SPAWN_TIMEOUT,
  );

  it.runIf(backends().includes('postgres'))(
    'applies the migrations to a fresh PostgreSQL database given by DATABASE_URL',
    async () => {
      const name = `paycenter_test_cli_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: inject('testDatabaseUrl') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
        const cwd = makeTempDir();
        const result = await runCli(['migrate'], {
          cwd,
          env: {
            DATABASE_URL: testDatabaseUrlFor(name),
            PAYCENTER_MASTER_KEY: randomBytes(32).toString('base64'),
          },
        });
        expect(expectSuccess(result)).toBe(`applied: ${MIGRATION_NAMES.join(', ')}\n`);
        // Nothing embedded was set up on the side.
        expect(fs.readdirSync(cwd)).toEqual([]);
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      }
    },
    SPAWN_TIMEOUT,
  );
});
