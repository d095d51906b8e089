import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Cleanup } from './cleanup.js';
import { freePort, type ServerProcess, startServer } from './processes.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
/** The `paycenter` command from the build (see buildServer). */
export const PAYCENTER_CLI = path.join(REPO_ROOT, 'packages/server/dist/cli/main.js');

export interface Paycenter {
  readonly server: ServerProcess;
  readonly adminToken: string;
}

export interface BenchApp {
  readonly id: string;
  readonly apiKey: string;
}

/**
 * `tsc -b` is incremental, so building every time costs a second or two and guarantees the benchmark
 * measures the sources as they are, never a stale dist.
 */
export async function buildServer(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const child = spawn(process.execPath, [tsc, '-b', 'packages/server'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`tsc -b packages/server failed (exit code ${code}):\n${output}`);
}

/**
 * Runs one `paycenter` command from the build to its end (e.g. `['app', 'create', …, '--json']`) with
 * only `env` as its environment; returns what it printed on stdout, or throws with what it printed.
 */
export async function runPaycenterCommand(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [PAYCENTER_CLI, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) {
    throw new Error(`paycenter ${args.join(' ')} failed (exit code ${code}):\n${stderr}${stdout}`);
  }
  return stdout;
}

/**
 * `paycenter start` from the build, as an operator runs it, on `databaseUrl` (migrated on start).
 * `startArgs` are added after `start` (e.g. `['--role', 'api']`); `env` is added to its environment.
 */
export async function startPaycenter(
  databaseUrl: string,
  cleanup: Cleanup,
  options: { startArgs?: string[]; env?: Record<string, string> } = {},
): Promise<Paycenter> {
  const adminToken = `adm_bench_${randomBytes(24).toString('hex')}`;
  const port = await freePort();
  const server = await startServer(
    {
      label: 'paycenter',
      nodeArgs: [PAYCENTER_CLI, 'start', ...(options.startArgs ?? [])],
      cwd: REPO_ROOT,
      env: {
        DATABASE_URL: databaseUrl,
        PAYCENTER_MASTER_KEY: randomBytes(32).toString('base64'),
        PAYCENTER_ADMIN_TOKEN: adminToken,
        // The default per-key limit (6,000/min) would turn most of the load into 429s.
        PAYCENTER_RATE_LIMIT: '0',
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        PORT: String(port),
        ...options.env,
      },
      port,
      readyPath: '/ready',
    },
    cleanup,
  );
  return { server, adminToken };
}

export async function createApp(
  paycenter: Paycenter,
  name: string,
  notifyUrl = 'http://127.0.0.1:9/hook',
): Promise<BenchApp> {
  const response = await fetch(`${paycenter.server.baseUrl}/admin-api/apps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${paycenter.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, notifyUrl }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (response.status !== 201) {
    throw new Error(`POST /admin-api/apps answered ${response.status}: ${text}`);
  }
  const created: unknown = JSON.parse(text);
  if (!isBenchApp(created)) throw new Error(`POST /admin-api/apps answered without id and apiKey: ${text}`);
  return { id: created.id, apiKey: created.apiKey };
}

function isBenchApp(value: unknown): value is BenchApp {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.id === 'string' && typeof record.apiKey === 'string';
}
