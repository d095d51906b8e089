import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Runs the real CLI (`src/cli/main.ts` through tsx) as a child process, the way an operator runs it:
 * its own working directory, and an environment holding only what the test gives it.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI_MAIN = path.resolve(here, '../../src/cli/main.ts');
/** Absolute, since `--import` resolves a bare name against the child's (temporary) working directory. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** PATH and HOME (and TMPDIR, where tsx keeps its cache) from this process, nothing else inherited. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

const tempDirs: string[] = [];
const children = new Set<ChildProcess>();

export function makeTempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paycenter-cli-'));
  tempDirs.push(dir);
  return dir;
}

/** Kills every child still running (by its pid) and removes the temporary directories. */
export function cleanUpCli(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of tempDirs.splice(0))
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on stdout; rejects on exit or after `timeoutMs`. */
  waitForStdout(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves once the process has exited and its output is read; kills it after `timeoutMs`. */
  exited(timeoutMs: number): Promise<CliResult>;
}

export function spawnCli(args: string[], options: { cwd: string; env?: Record<string, string> }): CliProcess {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, CLI_MAIN, ...args], {
    cwd: options.cwd,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${CLI_MAIN}`);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    child.emit('paycenter:stdout');
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const closed = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const describe = () => `paycenter ${args.join(' ')}`;
  return {
    child,
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStdout(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = stdout.match(pattern);
          if (match) finish(() => resolve(match));
        };
        const onClose = () =>
          finish(() => reject(new Error(`${describe()} exited before printing ${pattern}:\n${stderr}`)));
        const timer = setTimeout(
          () => finish(() => reject(new Error(`${describe()} printed no ${pattern} within ${timeoutMs} ms`))),
          timeoutMs,
        );
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          child.off('paycenter:stdout', check);
          child.off('close', onClose);
          settle();
        };
        child.on('paycenter:stdout', check);
        child.on('close', onClose);
        check();
      });
    },
    async exited(timeoutMs) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        const result = await closed;
        if (result.signal === 'SIGKILL') throw new Error(`${describe()} did not exit within ${timeoutMs} ms`);
        return result;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs one CLI command to its end. */
export function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  return spawnCli(args, options).exited(options.timeoutMs ?? 50_000);
}
